package api

import (
	"errors"
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Writer makes the API's writes to the state: *storage.Store on a single
// core; on a member of a core group, the group's log
// (internal/core/replication.Writes), which applies the same storage
// methods on every member.
type Writer interface {
	CreateModule(name, owner string) (storage.Module, error)
	RenameModule(seen storage.Module, to string) ([]storage.FunctionChange, error)
	DeleteModule(seen storage.Module) ([]storage.Function, error)
	CreateFunction(in storage.Module, nf storage.NewFunction) (storage.Function, error)
	UpdateFunction(seen storage.Function, u storage.FunctionUpdate) (storage.FunctionChange, error)
	DeleteFunction(seen storage.Function) (storage.Function, error)
	CreateSubject(name string, admin bool) (string, error)
	RotateToken(name string) (string, error)
	RevokeToken(name string) error
	SetSubjectEgress(subject string, hosts []string) error
	ClearSubjectEgress(subject string) error
	SetSubjectQuota(subject string, q storage.Quota) error
	ClearSubjectQuota(subject string) error
	CreateScript(sc storage.Script) (storage.Script, error)
	DeleteScript(seen storage.Script) (storage.Script, error)
	RotateSecretsKey() (keyID string, resealed int, err error)
}

var _ Writer = (*storage.Store)(nil)

// Unavailable is an error of a write the group could not take now: no
// majority is reachable, or the leader was lost before it answered. The
// API answers 503 with Retry-After; Leader names the core this one
// believes leads, empty if none; OutcomeUnknown reports whether the
// write may have been applied (the leader was lost after taking it).
type Unavailable interface {
	error
	Leader() string
	OutcomeUnknown() bool
}

// groupWriteHeader tells a client of a group whether a refused write was
// applied: "refused" (it was not: the client may send it to another
// core) or "unknown" (it may have been: read before writing again).
const groupWriteHeader = "Edgefaas-Group-Write"

// unavailableError is the 503 of a write the group could not take.
func unavailableError(err error) (*apiError, bool) {
	var u Unavailable
	if !errors.As(err, &u) {
		return nil, false
	}
	leader := u.Leader()
	if leader == "" {
		leader = "none known"
	}
	ae := errorf(http.StatusServiceUnavailable, "Service Unavailable: %v; writes need a majority of the core group (believed leader: %s); reads and invocations go on", err, leader)
	ae.header = http.Header{"Retry-After": {"1"}}
	if u.OutcomeUnknown() {
		ae.header.Set(groupWriteHeader, "unknown")
	} else {
		ae.header.Set(groupWriteHeader, "refused")
	}
	if u.Leader() != "" {
		ae.header.Set("Edgefaas-Group-Leader", u.Leader())
	}
	return ae, true
}
