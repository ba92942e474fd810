package replication

import "github.com/edgefaas/edgefaas/internal/core/storage"

// The node CA's commands: a core group shares one node CA, its join
// tokens and its records of joined workers, so a worker that joined
// through one core, with a token made on any, is a worker of every core,
// and a revocation through any core shuts it out of all.

const (
	opPutJoinToken    op = 32
	opSpendJoinToken  op = 33
	opReplaceNodeCert op = 34
	opAdoptNodeCA     op = 35
)

// PutJoinToken is storage.Store.PutJoinToken: the entry carries the
// token's hash, never the token.
type PutJoinToken struct {
	Hash  string            `json:"hash"`
	Token storage.JoinToken `json:"token"`
}

// SpendJoinToken is storage.Store.SpendJoinToken: the first of two
// cores spending one token wins, the other is answered ErrTokenInvalid.
type SpendJoinToken struct {
	Hash string `json:"hash"`
}

// ReplaceNodeCert is storage.Store.ReplaceNodeCert: a node's record as
// changed by one core, applied if the record is still the one it saw.
type ReplaceNodeCert struct {
	Seen *storage.NodeCert `json:"seen,omitempty"`
	New  storage.NodeCert  `json:"new"`
}

// AdoptNodeCA is storage.Store.AdoptNodeCA: the first member's CA becomes
// the group's. The entry carries the CA's key: the log is as private as
// the data directory that held the key file (docs/RATIONALE.md).
type AdoptNodeCA struct {
	CA storage.NodeCA `json:"ca"`
}

func (PutJoinToken) op() op    { return opPutJoinToken }
func (SpendJoinToken) op() op  { return opSpendJoinToken }
func (ReplaceNodeCert) op() op { return opReplaceNodeCert }
func (AdoptNodeCA) op() op     { return opAdoptNodeCA }

func (c PutJoinToken) apply(s *storage.Store) (any, error) {
	return nil, s.PutJoinToken(c.Hash, c.Token)
}

func (c SpendJoinToken) apply(s *storage.Store) (any, error) { return s.SpendJoinToken(c.Hash) }

func (c ReplaceNodeCert) apply(s *storage.Store) (any, error) {
	return nil, s.ReplaceNodeCert(c.Seen, c.New)
}

func (c AdoptNodeCA) apply(s *storage.Store) (any, error) { return s.AdoptNodeCA(c.CA) }

// decodeNodeCommand decodes the node CA's commands; nil for another op.
func decodeNodeCommand(o op, body []byte) Command {
	switch o {
	case opPutJoinToken:
		return decodeAs[PutJoinToken](body)
	case opSpendJoinToken:
		return decodeAs[SpendJoinToken](body)
	case opReplaceNodeCert:
		return decodeAs[ReplaceNodeCert](body)
	case opAdoptNodeCA:
		return decodeAs[AdoptNodeCA](body)
	}
	return nil
}

// nodeReplyValue is replyValue for the node CA's commands.
func nodeReplyValue(o op) any {
	switch o {
	case opSpendJoinToken:
		return new(storage.JoinToken)
	case opAdoptNodeCA:
		return new(storage.NodeCA)
	}
	return nil
}
