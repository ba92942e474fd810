package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Script is a stored APP scheduling script (FunLess's /v1/scripts/app).
// Names are one namespace for the whole core, as in FunLess; Owner is the
// subject that created it (the API shows a script to its owner and to
// admins). Scripts are immutable: replacing one is a delete and a create.
type Script struct {
	// ID is a number given once per core, increasing (FunLess answers its
	// database id).
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// Shared: created by an admin, so every subject may use it (the API's
	// rule; the store only keeps the flag).
	Shared bool `json:"shared"`
	// Script is the parsed, normalised script as JSON (internal/core/app);
	// the store does not look inside.
	Script json.RawMessage `json:"script"`
	// Source is the YAML as uploaded.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateScript stores a new script (Name, Owner, Shared, Script, Source;
// the store sets ID and CreatedAt); ErrExists if the name is taken. The
// record and the id counter are one synced batch.
func (s *Store) CreateScript(sc Script) (Script, error) {
	return s.CreateScriptAt(sc, s.now())
}

// CreateScriptAt is CreateScript with the creation time given (see
// CreateModuleStamped).
func (s *Store) CreateScriptAt(sc Script, now time.Time) (Script, error) {
	name := sc.Name
	if err := CheckName("script", name); err != nil {
		return Script{}, err
	}
	if !json.Valid(sc.Script) {
		return Script{}, invalid("create script: the normalised script is not JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.exists(keyScript(name))
	if err != nil {
		return Script{}, err
	}
	if ok {
		return Script{}, fmt.Errorf("script %q: %w", name, ErrExists)
	}
	var seq int64
	switch v, err := s.get(keyScriptSeq()); {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Script{}, err
	default:
		if seq, err = strconv.ParseInt(string(v), 10, 64); err != nil {
			return Script{}, fmt.Errorf("read %s: %w", keyScriptSeq(), err)
		}
	}
	seq++
	sc.ID, sc.CreatedAt = seq, now
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(keyScriptSeq(), strconv.AppendInt(nil, seq, 10), nil); err != nil {
		return Script{}, err
	}
	if err := s.setJSON(b, keyScript(name), sc); err != nil {
		return Script{}, err
	}
	return sc, s.commit(b)
}

// GetScript returns a script by name, or ErrNotFound.
func (s *Store) GetScript(name string) (Script, error) {
	return getNamed[Script](s, keyScript(name), "script", name)
}

// ListScripts returns every script, by name.
func (s *Store) ListScripts() ([]Script, error) {
	return listJSON[Script](s, prefixScripts)
}

// DeleteScript deletes the script seen (as the caller read it; synced)
// and returns it: ErrNotFound if it is gone, ErrChanged if the stored
// script is another one (its ID, given once per core, differs).
func (s *Store) DeleteScript(seen Script) (Script, error) {
	name := seen.Name
	s.mu.Lock()
	defer s.mu.Unlock()
	sc, err := s.GetScript(name)
	if err != nil {
		return Script{}, err
	}
	if sc.ID != seen.ID || sc.Owner != seen.Owner {
		return Script{}, fmt.Errorf("script %q: %w", name, ErrChanged)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyScript(name), nil); err != nil {
		return Script{}, err
	}
	return sc, s.commitFreeing(b)
}
