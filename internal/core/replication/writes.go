package replication

import (
	"errors"
	"fmt"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Writes makes a core's writes through the group's log: each is a
// command, stamped here (identity, time, a new token's hash), proposed
// on the leader or forwarded to it, and answered with what the storage
// method answered when the member applied it. It has the storage write
// methods the API calls (api.Writer); reads stay on the store.
type Writes struct {
	m *Member
}

// Writes returns the member's writer.
func (m *Member) Writes() *Writes { return &Writes{m: m} }

// Unavailable is a write the group could not take: no leader is known
// (no majority reachable), or the leader was lost before it answered (the
// write may have been applied). The API answers it with 503.
type Unavailable struct {
	err    error
	leader string
}

func (u *Unavailable) Error() string  { return u.err.Error() }
func (u *Unavailable) Unwrap() error  { return u.err }
func (u *Unavailable) Leader() string { return u.leader }

// OutcomeUnknown reports whether the write may have been applied: the
// leader was lost after taking it (ErrUnknownOutcome). Otherwise it was
// refused before any leader applied it.
func (u *Unavailable) OutcomeUnknown() bool { return errors.Is(u.err, ErrUnknownOutcome) }

// AsUnavailable returns err as an *Unavailable, naming the leader m
// believes in, when it says the group could not take a write or a change
// of membership now (ErrNoLeader, ErrNotLeader, ErrUnknownOutcome);
// other errors unchanged.
func (m *Member) AsUnavailable(err error) error {
	if errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrNotLeader) {
		_, id := m.Leader()
		return &Unavailable{err: err, leader: string(id)}
	}
	return err
}

// proposeAs proposes c and returns its answer as a T.
func proposeAs[T any](w *Writes, c Command) (T, error) {
	var zero T
	v, err := w.m.Propose(c)
	if err != nil {
		return zero, w.m.AsUnavailable(err)
	}
	if v == nil {
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("write %T: unexpected answer %T", c, v)
	}
	return t, nil
}

func (w *Writes) store() *storage.Store { return w.m.fsm.Store() }

// CreateModule is storage.Store.CreateModule through the log.
func (w *Writes) CreateModule(name, owner string) (storage.Module, error) {
	st, err := w.store().NewStamp()
	if err != nil {
		return storage.Module{}, err
	}
	return proposeAs[storage.Module](w, CreateModule{Name: name, Owner: owner, Stamp: st})
}

// RenameModule is storage.Store.RenameModule through the log.
func (w *Writes) RenameModule(seen storage.Module, to string) ([]storage.FunctionChange, error) {
	return proposeAs[[]storage.FunctionChange](w, RenameModule{Seen: seen, To: to, At: w.store().Now()})
}

// DeleteModule is storage.Store.DeleteModule through the log.
func (w *Writes) DeleteModule(seen storage.Module) ([]storage.Function, error) {
	return proposeAs[[]storage.Function](w, DeleteModule{Seen: seen})
}

// CreateFunction is storage.Store.CreateFunction through the log.
func (w *Writes) CreateFunction(in storage.Module, nf storage.NewFunction) (storage.Function, error) {
	st, err := w.store().NewStamp()
	if err != nil {
		return storage.Function{}, err
	}
	if nf, err = sealedNew(w.store(), nf); err != nil {
		return storage.Function{}, err
	}
	return proposeAs[storage.Function](w, CreateFunction{In: in, New: nf, Stamp: st})
}

// UpdateFunction is storage.Store.UpdateFunction through the log.
func (w *Writes) UpdateFunction(seen storage.Function, u storage.FunctionUpdate) (storage.FunctionChange, error) {
	u, err := sealedUpdate(w.store(), u)
	if err != nil {
		return storage.FunctionChange{}, err
	}
	return proposeAs[storage.FunctionChange](w, UpdateFunction{Seen: seenOnly(seen), Update: u, At: w.store().Now()})
}

// DeleteFunction is storage.Store.DeleteFunction through the log.
func (w *Writes) DeleteFunction(seen storage.Function) (storage.Function, error) {
	return proposeAs[storage.Function](w, DeleteFunction{Seen: seenOnly(seen)})
}

// CreateSubject is storage.Store.CreateSubject through the log: the
// token is made here and answered; the log carries its hash only.
func (w *Writes) CreateSubject(name string, admin bool) (string, error) {
	token, hash, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	if _, err := proposeAs[any](w, CreateSubject{Name: name, Admin: admin, TokenHash: hash, At: w.store().Now()}); err != nil {
		return "", err
	}
	return token, nil
}

// CreateSubjectHashed is storage.Store.CreateSubjectHashed through the
// log, at the store's time: for a token made and kept by the caller.
func (w *Writes) CreateSubjectHashed(name string, admin bool, hash string) error {
	_, err := proposeAs[any](w, CreateSubject{Name: name, Admin: admin, TokenHash: hash, At: w.store().Now()})
	return err
}

// RotateToken is storage.Store.RotateToken through the log.
func (w *Writes) RotateToken(name string) (string, error) {
	token, hash, err := storage.NewToken()
	if err != nil {
		return "", err
	}
	if _, err := proposeAs[any](w, RotateToken{Name: name, TokenHash: hash, At: w.store().Now()}); err != nil {
		return "", err
	}
	return token, nil
}

// RevokeToken is storage.Store.RevokeToken through the log.
func (w *Writes) RevokeToken(name string) error {
	_, err := proposeAs[any](w, RevokeToken{Name: name})
	return err
}

// SetSubjectEgress is storage.Store.SetSubjectEgress through the log.
func (w *Writes) SetSubjectEgress(subject string, hosts []string) error {
	_, err := proposeAs[any](w, SetSubjectEgress{Subject: subject, Hosts: hosts})
	return err
}

// ClearSubjectEgress is storage.Store.ClearSubjectEgress through the log.
func (w *Writes) ClearSubjectEgress(subject string) error {
	_, err := proposeAs[any](w, ClearSubjectEgress{Subject: subject})
	return err
}

// SetSubjectQuota is storage.Store.SetSubjectQuota through the log.
func (w *Writes) SetSubjectQuota(subject string, q storage.Quota) error {
	_, err := proposeAs[any](w, SetSubjectQuota{Subject: subject, Quota: q})
	return err
}

// ClearSubjectQuota is storage.Store.ClearSubjectQuota through the log.
func (w *Writes) ClearSubjectQuota(subject string) error {
	_, err := proposeAs[any](w, ClearSubjectQuota{Subject: subject})
	return err
}

// CreateScript is storage.Store.CreateScript through the log.
func (w *Writes) CreateScript(sc storage.Script) (storage.Script, error) {
	return proposeAs[storage.Script](w, CreateScript{Script: sc, At: w.store().Now()})
}

// DeleteScript is storage.Store.DeleteScript through the log.
func (w *Writes) DeleteScript(seen storage.Script) (storage.Script, error) {
	return proposeAs[storage.Script](w, DeleteScript{Seen: seen})
}
