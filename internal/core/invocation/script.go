package invocation

import (
	"errors"
	"fmt"
	"sync"

	"github.com/edgefaas/edgefaas/internal/core/app"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// ScriptError is a call's APP script that cannot place it: it does not
// exist (for the caller) or has no tag for the function (FunLess's
// no_matching_tag). The call never reaches a worker.
type ScriptError struct {
	Message string
}

func (e *ScriptError) Error() string { return e.Message }

// Script resolves the APP script name for a call of f: a *ScriptError when
// it does not exist, visible says the caller may not use it (nil: any
// caller may), or it covers neither f's tag nor "default".
func (s *Service) Script(f storage.Function, name string, visible func(storage.Script) bool) (*app.Script, error) {
	if name == "" {
		return nil, nil
	}
	sc, err := s.cfg.Store.GetScript(name)
	if errors.Is(err, storage.ErrNotFound) || err == nil && visible != nil && !visible(sc) {
		return nil, &ScriptError{Message: fmt.Sprintf("APP script %q does not exist", name)}
	}
	if err != nil {
		return nil, err
	}
	parsed, err := s.scripts.decode(sc)
	if err != nil {
		return nil, err
	}
	if _, ok := parsed.Tags[f.Metadata.Tag]; ok {
		return parsed, nil
	}
	if _, ok := parsed.Tags[app.DefaultTag]; ok {
		return parsed, nil
	}
	return nil, &ScriptError{Message: fmt.Sprintf("APP script %q has no tag %q (the function's metadata tag) and no %q tag", name, f.Metadata.Tag, app.DefaultTag)}
}

// scriptCache keeps decoded scripts by id: a script never changes under
// its id (ids are not reused), so an entry is never stale, only unused.
type scriptCache struct {
	mu sync.Mutex
	m  map[int64]*app.Script
}

// maxCachedScripts bounds the cache; past it, it starts over.
const maxCachedScripts = 256

func (sc *scriptCache) decode(rec storage.Script) (*app.Script, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if p, ok := sc.m[rec.ID]; ok {
		return p, nil
	}
	p, err := app.Decode(rec.Script)
	if err != nil {
		return nil, fmt.Errorf("stored APP script %q: %w", rec.Name, err)
	}
	if sc.m == nil || len(sc.m) >= maxCachedScripts {
		sc.m = map[int64]*app.Script{}
	}
	sc.m[rec.ID] = p
	return p, nil
}
