package storage

import (
	"fmt"
	"time"
)

// DefaultModule is the module every subject can put functions in, as in
// FunLess. It always exists and cannot be deleted or renamed.
const DefaultModule = "_"

// Module is a named group of functions with one owning subject. The default
// module has no owner: each of its functions belongs to its creator.
//
// ID is given at creation and kept by a rename: a module deleted and
// created again under its name has a new one (see cas.go). The default
// module's is empty.
type Module struct {
	ID        string    `json:"id,omitempty"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateModule stores a new module owned by owner.
func (s *Store) CreateModule(name, owner string) (Module, error) {
	st, err := s.NewStamp()
	if err != nil {
		return Module{}, err
	}
	return s.CreateModuleStamped(name, owner, st)
}

// CreateModuleStamped is CreateModule with the new record's identity and
// time given: a core group's state machine applies it with the stamp the
// proposing core chose, so every member writes the same record.
func (s *Store) CreateModuleStamped(name, owner string, st Stamp) (Module, error) {
	if err := CheckName("module", name); err != nil {
		return Module{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == DefaultModule {
		return Module{}, fmt.Errorf("module %q: %w", name, ErrExists)
	}
	ok, err := s.exists(keyModule(name))
	if err != nil {
		return Module{}, err
	}
	if ok {
		return Module{}, fmt.Errorf("module %q: %w", name, ErrExists)
	}
	m := Module{ID: st.ID, Name: name, Owner: owner, CreatedAt: st.At}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyModule(name), m); err != nil {
		return Module{}, err
	}
	return m, s.commit(b)
}

// GetModule returns a module; the default module always exists.
func (s *Store) GetModule(name string) (Module, error) {
	if name == DefaultModule {
		return Module{Name: DefaultModule}, nil
	}
	return getNamed[Module](s, keyModule(name), "module", name)
}

// ListModules returns every module, the default one first, then by name.
func (s *Store) ListModules() ([]Module, error) {
	mods, err := listJSON[Module](s, prefixModules)
	return append([]Module{{Name: DefaultModule}}, mods...), err
}

// RenameModule renames the module seen (as the caller read it) and moves
// its functions, in one batch: ErrNotFound if it is gone, ErrChanged if
// the stored module is not seen. It returns every function's old and new
// record.
func (s *Store) RenameModule(seen Module, to string) ([]FunctionChange, error) {
	return s.RenameModuleAt(seen, to, s.now())
}

// RenameModuleAt is RenameModule with the functions' update time given
// (see CreateModuleStamped).
func (s *Store) RenameModuleAt(seen Module, to string, now time.Time) ([]FunctionChange, error) {
	from := seen.Name
	if from == DefaultModule || to == DefaultModule {
		return nil, fmt.Errorf("rename %q to %q: %w", from, to, ErrDefaultModule)
	}
	if err := CheckName("module", to); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.checkModule(seen)
	if err != nil {
		return nil, err
	}
	if from == to {
		return nil, nil
	}
	ok, err := s.exists(keyModule(to))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, fmt.Errorf("module %q: %w", to, ErrExists)
	}
	fns, err := s.listFunctions(from)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	m.Name = to
	if err := b.Delete(keyModule(from), nil); err != nil {
		return nil, err
	}
	if err := s.setJSON(b, keyModule(to), m); err != nil {
		return nil, err
	}
	changes := make([]FunctionChange, 0, len(fns))
	for i := range fns {
		old := fns[i]
		nf := old
		nf.Module = to
		nf.UpdatedAt = now
		if err := b.Delete(keyFunction(from, old.Name), nil); err != nil {
			return nil, err
		}
		if err := s.setJSON(b, keyFunction(to, nf.Name), nf); err != nil {
			return nil, err
		}
		changes = append(changes, FunctionChange{Old: &old, New: &nf})
	}
	return changes, s.commit(b)
}

// DeleteModule deletes the module seen (as the caller read it) with all
// its functions, releasing their code, in one batch: ErrNotFound if it is
// gone, ErrChanged if the stored module is not seen. It returns the
// deleted functions.
func (s *Store) DeleteModule(seen Module) ([]Function, error) {
	name := seen.Name
	if name == DefaultModule {
		return nil, fmt.Errorf("delete %q: %w", name, ErrDefaultModule)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.checkModule(seen); err != nil {
		return nil, err
	}
	fns, err := s.listFunctions(name)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	deltas := map[string]int64{}
	for _, f := range fns {
		deltas[f.Hash]--
		if err := b.Delete(keyFunction(name, f.Name), nil); err != nil {
			return nil, err
		}
	}
	freed, err := s.applyRefs(b, deltas, nil)
	if err != nil {
		return nil, err
	}
	if err := b.Delete(keyModule(name), nil); err != nil {
		return nil, err
	}
	if err := s.commitFreeing(b); err != nil {
		return nil, err
	}
	s.reclaim(freed)
	return fns, nil
}
