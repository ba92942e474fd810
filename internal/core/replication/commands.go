package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Command is one storage write as a log entry. It carries all the write
// takes from outside the database, so applying it is deterministic: the
// same command on the same state makes the same change on every member.
// Its compare-and-set (the record the caller checked) is checked when it
// is applied, against the state the log has built up to it.
type Command interface {
	op() op
	apply(s *storage.Store) (any, error)
}

// op names a command in its encoding; the values are part of the log's
// format and never change meaning.
type op byte

const (
	opCreateModule   op = 1
	opRenameModule   op = 2
	opDeleteModule   op = 3
	opCreateFunction op = 4
	opUpdateFunction op = 5
	opDeleteFunction op = 6
	opCreateSubject  op = 7
	opRotateToken    op = 8
	opRevokeToken    op = 9
	opSetEgress      op = 10
	opClearEgress    op = 11
	opCreateScript   op = 12
	opDeleteScript   op = 13
	opSetQuota       op = 14
	opClearQuota     op = 15
)

// CreateModule is storage.Store.CreateModule.
type CreateModule struct {
	Name  string        `json:"name"`
	Owner string        `json:"owner"`
	Stamp storage.Stamp `json:"stamp"`
}

// RenameModule is storage.Store.RenameModule.
type RenameModule struct {
	Seen storage.Module `json:"seen"`
	To   string         `json:"to"`
	At   time.Time      `json:"at"`
}

// DeleteModule is storage.Store.DeleteModule.
type DeleteModule struct {
	Seen storage.Module `json:"seen"`
}

// CreateFunction is storage.Store.CreateFunction. The code travels in the
// entry unless the group holds it already: then CodeHash names it and
// New.Code is empty (see withoutStoredCode). The sinks' and triggers'
// secrets travel sealed (secrets.go).
type CreateFunction struct {
	In       storage.Module      `json:"in"`
	New      storage.NewFunction `json:"new"`
	Stamp    storage.Stamp       `json:"stamp"`
	CodeHash string              `json:"code_hash,omitempty"`
}

// UpdateFunction is storage.Store.UpdateFunction; its code, like
// CreateFunction's, may be named by CodeHash instead, and its secrets
// travel sealed; Seen carries what the compare-and-set checks only.
type UpdateFunction struct {
	Seen     storage.Function       `json:"seen"`
	Update   storage.FunctionUpdate `json:"update"`
	At       time.Time              `json:"at"`
	CodeHash string                 `json:"code_hash,omitempty"`
}

// ErrCodeMissing answers a write that named its code by hash when the
// store no longer held it (its last function went in between): the
// proposer sends it again with the code.
var ErrCodeMissing = errors.New("the code named by hash is not stored")

// storedCode returns the code stored under hash, ErrCodeMissing if none.
func storedCode(s *storage.Store, hash string) ([]byte, error) {
	code, err := s.Code(hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("code %s: %w", hash, ErrCodeMissing)
	}
	return code, err
}

// withoutStoredCode returns c with its code named by hash instead of
// carried when s holds that code already (code is stored once per hash,
// so the log need not carry it again), and whether it changed c.
func withoutStoredCode(s *storage.Store, c Command) (Command, bool) {
	held := func(code []byte) (string, bool) {
		if len(code) == 0 {
			return "", false
		}
		h := storage.HashCode(code)
		n, err := s.CodeRefs(h)
		return h, err == nil && n > 0
	}
	switch c := c.(type) {
	case CreateFunction:
		if h, ok := held(c.New.Code); ok {
			c.CodeHash, c.New.Code = h, nil
			return c, true
		}
	case UpdateFunction:
		if h, ok := held(c.Update.Code); ok {
			c.CodeHash, c.Update.Code = h, nil
			return c, true
		}
	}
	return c, false
}

// DeleteFunction is storage.Store.DeleteFunction.
type DeleteFunction struct {
	Seen storage.Function `json:"seen"`
}

// CreateSubject is storage.Store.CreateSubject; the entry carries the
// token's hash, never the token (storage.NewToken, on the proposing core).
type CreateSubject struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	TokenHash string    `json:"token_hash"`
	At        time.Time `json:"at"`
}

// RotateToken is storage.Store.RotateToken, with the new token's hash.
type RotateToken struct {
	Name      string    `json:"name"`
	TokenHash string    `json:"token_hash"`
	At        time.Time `json:"at"`
}

// RevokeToken is storage.Store.RevokeToken.
type RevokeToken struct {
	Name string `json:"name"`
}

// SetSubjectEgress is storage.Store.SetSubjectEgress.
type SetSubjectEgress struct {
	Subject string   `json:"subject"`
	Hosts   []string `json:"hosts"`
}

// ClearSubjectEgress is storage.Store.ClearSubjectEgress.
type ClearSubjectEgress struct {
	Subject string `json:"subject"`
}

// SetSubjectQuota is storage.Store.SetSubjectQuota.
type SetSubjectQuota struct {
	Subject string        `json:"subject"`
	Quota   storage.Quota `json:"quota"`
}

// ClearSubjectQuota is storage.Store.ClearSubjectQuota.
type ClearSubjectQuota struct {
	Subject string `json:"subject"`
}

// CreateScript is storage.Store.CreateScript; the script's id is the
// group's counter, given when the entry is applied.
type CreateScript struct {
	Script storage.Script `json:"script"`
	At     time.Time      `json:"at"`
}

// DeleteScript is storage.Store.DeleteScript.
type DeleteScript struct {
	Seen storage.Script `json:"seen"`
}

func (CreateModule) op() op       { return opCreateModule }
func (RenameModule) op() op       { return opRenameModule }
func (DeleteModule) op() op       { return opDeleteModule }
func (CreateFunction) op() op     { return opCreateFunction }
func (UpdateFunction) op() op     { return opUpdateFunction }
func (DeleteFunction) op() op     { return opDeleteFunction }
func (CreateSubject) op() op      { return opCreateSubject }
func (RotateToken) op() op        { return opRotateToken }
func (RevokeToken) op() op        { return opRevokeToken }
func (SetSubjectEgress) op() op   { return opSetEgress }
func (ClearSubjectEgress) op() op { return opClearEgress }
func (CreateScript) op() op       { return opCreateScript }
func (DeleteScript) op() op       { return opDeleteScript }
func (SetSubjectQuota) op() op    { return opSetQuota }
func (ClearSubjectQuota) op() op  { return opClearQuota }

func (c CreateModule) apply(s *storage.Store) (any, error) {
	return s.CreateModuleStamped(c.Name, c.Owner, c.Stamp)
}

func (c RenameModule) apply(s *storage.Store) (any, error) {
	return s.RenameModuleAt(c.Seen, c.To, c.At)
}

func (c DeleteModule) apply(s *storage.Store) (any, error) { return s.DeleteModule(c.Seen) }

func (c CreateFunction) apply(s *storage.Store) (any, error) {
	if c.CodeHash != "" {
		code, err := storedCode(s, c.CodeHash)
		if err != nil {
			return nil, err
		}
		c.New.Code = code
	}
	f, err := s.CreateFunctionStamped(c.In, c.New, c.Stamp)
	if err != nil {
		return f, err
	}
	return opened(s, f), nil
}

func (c UpdateFunction) apply(s *storage.Store) (any, error) {
	if c.CodeHash != "" {
		code, err := storedCode(s, c.CodeHash)
		if err != nil {
			return nil, err
		}
		c.Update.Code = code
	}
	ch, err := s.UpdateFunctionAt(c.Seen, c.Update, c.At)
	if err == nil && ch.New != nil {
		f := opened(s, *ch.New)
		ch.New = &f
	}
	return ch, err
}

func (c DeleteFunction) apply(s *storage.Store) (any, error) { return s.DeleteFunction(c.Seen) }

func (c CreateSubject) apply(s *storage.Store) (any, error) {
	return nil, s.CreateSubjectHashed(c.Name, c.Admin, c.TokenHash, c.At)
}

func (c RotateToken) apply(s *storage.Store) (any, error) {
	return nil, s.RotateTokenHashed(c.Name, c.TokenHash, c.At)
}

func (c RevokeToken) apply(s *storage.Store) (any, error) { return nil, s.RevokeToken(c.Name) }

func (c SetSubjectEgress) apply(s *storage.Store) (any, error) {
	return nil, s.SetSubjectEgress(c.Subject, c.Hosts)
}

func (c ClearSubjectEgress) apply(s *storage.Store) (any, error) {
	return nil, s.ClearSubjectEgress(c.Subject)
}

func (c SetSubjectQuota) apply(s *storage.Store) (any, error) {
	return nil, s.SetSubjectQuota(c.Subject, c.Quota)
}

func (c ClearSubjectQuota) apply(s *storage.Store) (any, error) {
	return nil, s.ClearSubjectQuota(c.Subject)
}

func (c CreateScript) apply(s *storage.Store) (any, error) { return s.CreateScriptAt(c.Script, c.At) }

func (c DeleteScript) apply(s *storage.Store) (any, error) { return s.DeleteScript(c.Seen) }

// Encode returns a command's log entry: its op, one byte, then its JSON
// (Go encodes a struct's fields in declaration order and a map's keys
// sorted, so one command has one encoding).
func Encode(c Command) ([]byte, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", c.op(), err)
	}
	return append([]byte{byte(c.op())}, body...), nil
}

// errBadCommand means a log entry is not a command this build knows.
var errBadCommand = errors.New("not a known command")

// Decode returns the command in a log entry.
func Decode(b []byte) (Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty entry: %w", errBadCommand)
	}
	var c Command
	switch op(b[0]) {
	case opCreateModule:
		c = decodeAs[CreateModule](b[1:])
	case opRenameModule:
		c = decodeAs[RenameModule](b[1:])
	case opDeleteModule:
		c = decodeAs[DeleteModule](b[1:])
	case opCreateFunction:
		c = decodeAs[CreateFunction](b[1:])
	case opUpdateFunction:
		c = decodeAs[UpdateFunction](b[1:])
	case opDeleteFunction:
		c = decodeAs[DeleteFunction](b[1:])
	case opCreateSubject:
		c = decodeAs[CreateSubject](b[1:])
	case opRotateToken:
		c = decodeAs[RotateToken](b[1:])
	case opRevokeToken:
		c = decodeAs[RevokeToken](b[1:])
	case opSetEgress:
		c = decodeAs[SetSubjectEgress](b[1:])
	case opClearEgress:
		c = decodeAs[ClearSubjectEgress](b[1:])
	case opCreateScript:
		c = decodeAs[CreateScript](b[1:])
	case opDeleteScript:
		c = decodeAs[DeleteScript](b[1:])
	case opSetQuota:
		c = decodeAs[SetSubjectQuota](b[1:])
	case opClearQuota:
		c = decodeAs[ClearSubjectQuota](b[1:])
	default:
		if c = decodeQueue(op(b[0]), b[1:]); c == nil {
			c = decodeNodeCommand(op(b[0]), b[1:])
		}
		if c == nil {
			c = decodeSecretsCommand(op(b[0]), b[1:])
		}
		if c == nil {
			return nil, fmt.Errorf("op %d: %w", b[0], errBadCommand)
		}
	}
	if e, ok := c.(decodeError); ok {
		return nil, fmt.Errorf("op %d: %w", b[0], e.err)
	}
	return c, nil
}

// decodeError is what decodeAs returns for a body that does not decode.
type decodeError struct{ err error }

func (decodeError) op() op                              { return 0 }
func (e decodeError) apply(*storage.Store) (any, error) { return nil, e.err }

func decodeAs[T Command](body []byte) Command {
	var c T
	if err := json.Unmarshal(body, &c); err != nil {
		return decodeError{fmt.Errorf("%w: %w", errBadCommand, err)}
	}
	return c
}
