package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Metadata is what a client declares about a function. It is stored as sent
// (after validation) and never dropped; an update without metadata keeps the
// previous one.
type Metadata struct {
	// Tag is a free label, as in FunLess.
	Tag string `json:"tag"`
	// Capacity is the memory the function needs, in MiB; the scheduler only
	// picks workers with that much free. 0 means undeclared.
	Capacity int64 `json:"capacity"`
	// TimeoutMS bounds one invocation, in milliseconds; 0 means the
	// platform default.
	TimeoutMS int64 `json:"timeout_ms"`
	// AllowedHosts lists the hosts the function may reach over outbound
	// HTTP; empty means none.
	AllowedHosts []string `json:"allowed_hosts"`
	// Idempotent says the function may safely run twice: an asynchronous
	// call that may have run when its worker or the core was lost is run
	// again instead of being marked lost.
	Idempotent bool `json:"idempotent,omitempty"`
}

// Function is one stored function: where it lives, which code it runs and
// what it declared. Version starts at 1 and grows by one at every update.
// ID is given at creation and kept by updates and renames: a function
// deleted and created again under its name has a new one (see cas.go).
type Function struct {
	ID        string    `json:"id,omitempty"`
	Module    string    `json:"module"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Hash      string    `json:"hash"`
	ABI       string    `json:"abi"`
	Size      int64     `json:"size"`
	Metadata  Metadata  `json:"metadata"`
	Events    []Event   `json:"events,omitempty"` // triggers (package triggers)
	Sinks     []Sink    `json:"sinks,omitempty"`
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// codeRef counts the function versions that use one code blob, so the blob
// is deleted with its last reference.
type codeRef struct {
	Refs int64 `json:"refs"`
	Size int64 `json:"size"`
}

// FunctionChange pairs the record before and after a change, for telling
// workers what to fetch and what to evict. Old is nil for a creation, New is
// nil for a deletion.
type FunctionChange struct {
	Old *Function
	New *Function
}

// applyRefs adds deltas to the reference counts of code blobs in batch b,
// writing newCode[hash] for a blob that gets its first reference and
// deleting a blob that loses its last; it returns the hashes deleted, for
// reclaim once the batch is committed. Callers hold s.mu.
func (s *Store) applyRefs(b *pebble.Batch, deltas map[string]int64, newCode map[string][]byte) (freed []string, err error) {
	hashes := make([]string, 0, len(deltas))
	for h := range deltas {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		d := deltas[h]
		if d == 0 {
			continue
		}
		var ref codeRef
		err := s.getJSON(keyRef(h), &ref)
		switch {
		case errors.Is(err, ErrNotFound):
			code, ok := newCode[h]
			if !ok || d < 0 {
				return nil, fmt.Errorf("code %s has no reference count: database inconsistent", h)
			}
			if err := b.Set(keyCode(h), code, nil); err != nil {
				return nil, err
			}
			ref = codeRef{Size: int64(len(code))}
		case err != nil:
			return nil, err
		}
		ref.Refs += d
		if ref.Refs <= 0 {
			if err := b.Delete(keyCode(h), nil); err != nil {
				return nil, err
			}
			if err := b.Delete(keyRef(h), nil); err != nil {
				return nil, err
			}
			freed = append(freed, h)
			continue
		}
		if err := s.setJSON(b, keyRef(h), ref); err != nil {
			return nil, err
		}
	}
	return freed, nil
}

// NewFunction is what a client uploads to create a function.
type NewFunction struct {
	Name, Owner string
	Code        []byte
	ABI         string
	Metadata    Metadata
	Events      []Event
	Sinks       []Sink
}

// CreateFunction stores a function and its code (once per hash) in one
// synced batch, in module in as the caller saw it (from GetModule):
// ErrNotFound if it is gone, ErrChanged if it is another module now.
func (s *Store) CreateFunction(in Module, nf NewFunction) (Function, error) {
	st, err := s.NewStamp()
	if err != nil {
		return Function{}, err
	}
	return s.CreateFunctionStamped(in, nf, st)
}

// CreateFunctionStamped is CreateFunction with the new record's identity
// and time given (see CreateModuleStamped).
func (s *Store) CreateFunctionStamped(in Module, nf NewFunction, st Stamp) (Function, error) {
	if err := CheckName("function", nf.Name); err != nil {
		return Function{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.checkModule(in); err != nil {
		return Function{}, err
	}
	ok, err := s.exists(keyFunction(in.Name, nf.Name))
	if err != nil {
		return Function{}, err
	}
	if ok {
		return Function{}, fmt.Errorf("function %q in module %q: %w", nf.Name, in.Name, ErrExists)
	}
	now := st.At
	f := Function{
		ID: st.ID, Module: in.Name, Name: nf.Name, Owner: nf.Owner,
		Hash: HashCode(nf.Code), ABI: nf.ABI, Size: int64(len(nf.Code)),
		Metadata: nf.Metadata, Version: 1, CreatedAt: now, UpdatedAt: now,
		Events: nf.Events,
		Sinks:  nf.Sinks,
	}
	if err := s.checkQuota(f, nil); err != nil {
		return Function{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if _, err := s.applyRefs(b, map[string]int64{f.Hash: 1}, map[string][]byte{f.Hash: nf.Code}); err != nil {
		return Function{}, err
	}
	if err := s.setJSON(b, keyFunction(f.Module, f.Name), f); err != nil {
		return Function{}, err
	}
	return f, s.commit(b)
}

// FunctionUpdate changes a function. A nil Code keeps the code (and ABI); a
// nil Metadata keeps the metadata; a nil Events keeps the triggers (an
// empty list removes them).
type FunctionUpdate struct {
	Code     []byte
	ABI      string
	Metadata *Metadata
	Events   *[]Event
	// Sinks, if not nil, replaces the function's sinks (empty: none).
	Sinks *[]Sink
}

// UpdateFunction applies u to the function seen (as the caller read it),
// bumps its version and moves the code reference, in one synced batch:
// ErrNotFound if it is gone, ErrChanged if the stored record is not seen.
func (s *Store) UpdateFunction(seen Function, u FunctionUpdate) (FunctionChange, error) {
	return s.UpdateFunctionAt(seen, u, s.now())
}

// UpdateFunctionAt is UpdateFunction with the update time given (see
// CreateModuleStamped).
func (s *Store) UpdateFunctionAt(seen Function, u FunctionUpdate, now time.Time) (FunctionChange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.checkFunction(seen)
	if err != nil {
		return FunctionChange{}, err
	}
	nf := old
	nf.Version++
	nf.UpdatedAt = now
	deltas := map[string]int64{}
	var newCode map[string][]byte
	if u.Code != nil {
		nf.Hash = HashCode(u.Code)
		nf.Size = int64(len(u.Code))
		nf.ABI = u.ABI
		deltas[old.Hash]--
		deltas[nf.Hash]++
		newCode = map[string][]byte{nf.Hash: u.Code}
	}
	if u.Metadata != nil {
		nf.Metadata = *u.Metadata
	}
	if u.Events != nil {
		nf.Events = *u.Events
	}
	if u.Sinks != nil {
		nf.Sinks = *u.Sinks
	}
	if err := s.checkQuota(nf, &old); err != nil {
		return FunctionChange{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	freed, err := s.applyRefs(b, deltas, newCode)
	if err != nil {
		return FunctionChange{}, err
	}
	if err := s.setJSON(b, keyFunction(nf.Module, nf.Name), nf); err != nil {
		return FunctionChange{}, err
	}
	if err := s.commit(b); err != nil {
		return FunctionChange{}, err
	}
	s.reclaim(freed)
	return FunctionChange{Old: &old, New: &nf}, nil
}

// GetFunction returns one function's record.
func (s *Store) GetFunction(module, name string) (Function, error) {
	var f Function
	if err := s.getJSON(keyFunction(module, name), &f); err != nil {
		return Function{}, fmt.Errorf("function %q in module %q: %w", name, module, err)
	}
	return f, nil
}

// ListFunctions returns a module's functions by name (a prefix scan). The
// module must exist.
func (s *Store) ListFunctions(module string) ([]Function, error) {
	if _, err := s.GetModule(module); err != nil {
		return nil, err
	}
	return s.listFunctions(module)
}

func (s *Store) listFunctions(module string) ([]Function, error) {
	return listJSON[Function](s, prefixFunctions(module))
}

// DeleteFunction deletes the function seen (as the caller read it) and
// releases its code, in one synced batch: ErrNotFound if it is gone,
// ErrChanged if the stored record is not seen. It returns the deleted
// record.
func (s *Store) DeleteFunction(seen Function) (Function, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.checkFunction(seen)
	if err != nil {
		return Function{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyFunction(f.Module, f.Name), nil); err != nil {
		return Function{}, err
	}
	freed, err := s.applyRefs(b, map[string]int64{f.Hash: -1}, nil)
	if err != nil {
		return Function{}, err
	}
	if err := s.commitFreeing(b); err != nil {
		return Function{}, err
	}
	s.reclaim(freed)
	return f, nil
}

// Code returns the code stored under a sha256 hex hash. Workers that lack a
// function's code fetch it through this.
func (s *Store) Code(hash string) ([]byte, error) {
	v, err := s.get(keyCode(hash))
	if err != nil {
		return nil, fmt.Errorf("code %s: %w", hash, err)
	}
	return v, nil
}

// CodeRefs returns how many function versions reference the code with hash,
// 0 if it is not stored.
func (s *Store) CodeRefs(hash string) (int64, error) {
	var ref codeRef
	err := s.getJSON(keyRef(hash), &ref)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return ref.Refs, err
}

// HashCode returns the content address of code: its sha256 in lower-case hex.
func HashCode(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}
