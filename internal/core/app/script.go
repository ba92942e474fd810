// Package app is FunLess's APP placement language ("Aggregate
// Programming"-like scheduling scripts): parsing a YAML script strictly
// into a normalised Script, and choosing a worker for a call from a
// snapshot of the workers. It is plain Go with no node, table or storage
// so that the policy can be tested from data files alone; the scheduler's
// Table feeds it a snapshot and the API stores the normalised form.
//
// A script is a YAML list of one-key maps, one per tag:
//
//   - producer:              # the tag, matched against a function's metadata tag
//   - workers: [w1, w2]  # a list of worker node names, or "*"
//     strategy: random   # best-first (default), random or platform
//     invalidate:
//     capacity_used: 50%
//     max_concurrent_invocations: 4
//     affinity: [consumer, "!heavy"]
//     followup: default      # or fail (default): when every block is invalidated
//
// Select follows FunLess's semantics (core/lib/core/domain/policies/app.ex),
// with affinity (unused in FunLess) evaluated against the tags of the
// calls in flight on each worker.
package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bounds of a script, so that a stored script and its evaluation stay small.
const (
	// MaxSourceBytes bounds the YAML text.
	MaxSourceBytes = 64 << 10
	maxTags        = 256
	maxBlocks      = 64
	maxNames       = 1024 // workers or affinity entries in one block
	maxNameLen     = 256  // a tag, worker or affinity name
)

// Strategy chooses among a block's valid workers.
type Strategy string

// Strategies.
const (
	// BestFirst takes the first valid worker in the block's order ("*":
	// by node name).
	BestFirst Strategy = "best-first"
	// Random takes a valid worker uniformly at random.
	Random Strategy = "random"
	// Platform lets the platform's own policy choose among the valid ones.
	Platform Strategy = "platform"
)

// Followup says what happens when every block of a tag is invalidated.
type Followup string

// Followups.
const (
	// Fail answers the call with an error (ErrNoValidWorkers).
	Fail Followup = "fail"
	// Default tries the script's "default" tag, else the platform policy.
	Default Followup = "default"
)

// DefaultTag is the tag that applies to functions whose tag the script does
// not name, and the one a "default" followup falls back to.
const DefaultTag = "default"

// Script is a parsed, normalised APP script. Its JSON form is FunLess's
// stored shape: {"tags":{NAME:{"blocks":[...],"followup":"fail"}}}.
type Script struct {
	Tags map[string]Tag `json:"tags"`
}

// Tag is the placement rule of the functions carrying one tag.
type Tag struct {
	Blocks   []Block  `json:"blocks"`
	Followup Followup `json:"followup"`
}

// Block is one candidate set of workers, tried in order.
type Block struct {
	Workers    Workers    `json:"workers"`
	Strategy   Strategy   `json:"strategy"`
	Invalidate Invalidate `json:"invalidate"`
	Affinity   Affinity   `json:"affinity"`
}

// Workers is a block's worker list: All ("*") or Names in order.
type Workers struct {
	All   bool
	Names []string
}

// MarshalJSON writes "*" or the list of names.
func (w Workers) MarshalJSON() ([]byte, error) {
	if w.All {
		return []byte(`"*"`), nil
	}
	if w.Names == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(w.Names)
}

// UnmarshalJSON reads "*" or a list of names.
func (w *Workers) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "*" {
			return fmt.Errorf(`workers must be "*" or a list, got %q`, s)
		}
		*w = Workers{All: true}
		return nil
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	*w = Workers{Names: names}
	return nil
}

// Invalidate holds the conditions that make a worker invalid for a block.
type Invalidate struct {
	// CapacityUsed: a worker is invalid when its memory in use plus the
	// function's capacity would exceed this percentage of its total.
	CapacityUsed Limit `json:"capacity_used"`
	// MaxConcurrentInvocations: a worker is invalid when it already runs
	// this many calls.
	MaxConcurrentInvocations Limit `json:"max_concurrent_invocations"`
}

// Limit is a bound or none ("infinity" in JSON, as FunLess stores it).
type Limit struct {
	Set bool
	N   int
}

// MarshalJSON writes the number or "infinity".
func (l Limit) MarshalJSON() ([]byte, error) {
	if !l.Set {
		return []byte(`"infinity"`), nil
	}
	return strconv.AppendInt(nil, int64(l.N), 10), nil
}

// UnmarshalJSON reads a number or "infinity".
func (l *Limit) UnmarshalJSON(b []byte) error {
	if string(b) == `"infinity"` {
		*l = Limit{}
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf(`a limit is an integer or "infinity": %w`, err)
	}
	*l = Limit{Set: true, N: n}
	return nil
}

// Affinity lists the tags a block wants beside the call (Affinity) and the
// ones it must avoid (Antiaffinity, written "!tag" in the script).
type Affinity struct {
	Affinity     []string `json:"affinity"`
	Antiaffinity []string `json:"antiaffinity"`
}

// Decode reads a script stored in its normalised JSON form (as Parse
// produced it) and checks it again.
func Decode(b []byte) (*Script, error) {
	var s Script
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode APP script: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("decode APP script: %w", err)
	}
	return &s, nil
}

// check validates a decoded script the way Parse does.
func (s *Script) check() error {
	if len(s.Tags) == 0 {
		return errors.New("no tags")
	}
	for name, t := range s.Tags {
		if len(t.Blocks) == 0 {
			return fmt.Errorf("tag %q: no blocks", name)
		}
		if t.Followup != Fail && t.Followup != Default {
			return fmt.Errorf("tag %q: followup %q", name, t.Followup)
		}
		for i, b := range t.Blocks {
			switch {
			case !b.Workers.All && len(b.Workers.Names) == 0:
				return fmt.Errorf("tag %q block %d: no workers", name, i+1)
			case b.Strategy != BestFirst && b.Strategy != Random && b.Strategy != Platform:
				return fmt.Errorf("tag %q block %d: strategy %q", name, i+1, b.Strategy)
			case b.Invalidate.CapacityUsed.Set && (b.Invalidate.CapacityUsed.N < 0 || b.Invalidate.CapacityUsed.N > 100):
				return fmt.Errorf("tag %q block %d: capacity_used %d", name, i+1, b.Invalidate.CapacityUsed.N)
			case b.Invalidate.MaxConcurrentInvocations.Set && b.Invalidate.MaxConcurrentInvocations.N < 0:
				return fmt.Errorf("tag %q block %d: max_concurrent_invocations %d", name, i+1, b.Invalidate.MaxConcurrentInvocations.N)
			}
		}
	}
	return nil
}

// SyntaxError is a script refused by Parse. Field names the offending
// place ("tag \"t\", block 2, invalidate.capacity_used"); Line is its line
// in the YAML (0 when unknown).
type SyntaxError struct {
	Field   string
	Line    int
	Message string
}

func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString("APP script")
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	b.WriteString(": " + e.Message)
	return b.String()
}

func fail(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &SyntaxError{Field: field, Line: line, Message: fmt.Sprintf(format, args...)}
}

// Parse reads a YAML APP script strictly: unknown keys, wrong types, an
// unknown strategy or followup, a percentage outside 0–100%, a negative
// count, an empty block list or worker list and a repeated tag are all
// refused with a *SyntaxError naming the field.
func Parse(src []byte) (*Script, error) {
	if len(src) > MaxSourceBytes {
		return nil, &SyntaxError{Message: fmt.Sprintf("the script is %d bytes, the limit is %d", len(src), MaxSourceBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, &SyntaxError{Message: "not valid YAML: " + err.Error()}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &SyntaxError{Message: "the script is empty; it must be a list of tags (- TAG: [blocks])"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode || len(root.Content) == 0 {
		return nil, fail(root, "", "the script must be a non-empty list of tags, each `- TAG:` followed by a list of blocks")
	}
	if len(root.Content) > maxTags {
		return nil, fail(root, "", "%d tags, the limit is %d", len(root.Content), maxTags)
	}
	s := &Script{Tags: map[string]Tag{}}
	for i, item := range root.Content {
		name, tag, err := parseTag(i+1, item)
		if err != nil {
			return nil, err
		}
		if _, dup := s.Tags[name]; dup {
			return nil, fail(item, fmt.Sprintf("tag %q", name), "the tag is defined twice")
		}
		s.Tags[name] = tag
	}
	return s, nil
}

func parseTag(pos int, n *yaml.Node) (string, Tag, error) {
	where := fmt.Sprintf("tag %d", pos)
	if n.Kind != yaml.MappingNode {
		return "", Tag{}, fail(n, where, "each item must be a map `TAG: [blocks]` (with an optional `followup`)")
	}
	var name string
	var blocks *yaml.Node
	tag := Tag{Followup: Fail}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return "", Tag{}, fail(k, where, "a tag name must be a string")
		}
		if k.Value == "followup" {
			if v.Kind != yaml.ScalarNode || (v.Value != string(Fail) && v.Value != string(Default)) {
				return "", Tag{}, fail(v, where+", followup", `must be "default" or "fail", got %s`, describe(v))
			}
			tag.Followup = Followup(v.Value)
			continue
		}
		if blocks != nil {
			return "", Tag{}, fail(k, where, "unknown key %q: an item holds one tag (already %q) and an optional followup", k.Value, name)
		}
		if k.Value == "" || len(k.Value) > maxNameLen {
			return "", Tag{}, fail(k, where, "a tag name must be 1 to %d characters", maxNameLen)
		}
		name, blocks = k.Value, v
		where = fmt.Sprintf("tag %q", name)
	}
	if blocks == nil {
		return "", Tag{}, fail(n, where, "no tag: the item has only a followup")
	}
	if blocks.Kind != yaml.SequenceNode {
		return "", Tag{}, fail(blocks, where, "the tag needs a list of blocks, got %s", describe(blocks))
	}
	if len(blocks.Content) == 0 {
		return "", Tag{}, fail(blocks, where, "the list of blocks is empty")
	}
	if len(blocks.Content) > maxBlocks {
		return "", Tag{}, fail(blocks, where, "%d blocks, the limit is %d", len(blocks.Content), maxBlocks)
	}
	for i, bn := range blocks.Content {
		b, err := parseBlock(fmt.Sprintf("%s, block %d", where, i+1), bn)
		if err != nil {
			return "", Tag{}, err
		}
		tag.Blocks = append(tag.Blocks, b)
	}
	return name, tag, nil
}

func parseBlock(where string, n *yaml.Node) (Block, error) {
	b := Block{Strategy: BestFirst, Affinity: Affinity{Affinity: []string{}, Antiaffinity: []string{}}}
	if n.Kind != yaml.MappingNode {
		return b, fail(n, where, "a block must be a map with workers, strategy, invalidate, affinity")
	}
	haveWorkers := false
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return b, fail(k, where, "%s appears twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "workers":
			w, err := parseWorkers(where+", workers", v)
			if err != nil {
				return b, err
			}
			b.Workers, haveWorkers = w, true
		case "strategy":
			if v.Kind != yaml.ScalarNode {
				return b, fail(v, where+", strategy", `must be "best-first", "random" or "platform", got %s`, describe(v))
			}
			switch s := Strategy(v.Value); s {
			case BestFirst, Random, Platform:
				b.Strategy = s
			default:
				return b, fail(v, where+", strategy", `must be "best-first", "random" or "platform", got %q`, v.Value)
			}
		case "invalidate":
			inv, err := parseInvalidate(where+", invalidate", v)
			if err != nil {
				return b, err
			}
			b.Invalidate = inv
		case "affinity":
			names, err := parseNames(where+", affinity", v)
			if err != nil {
				return b, err
			}
			for _, a := range names {
				if t, ok := strings.CutPrefix(a, "!"); ok {
					if t == "" {
						return b, fail(v, where+", affinity", `"!" must be followed by a tag`)
					}
					b.Affinity.Antiaffinity = append(b.Affinity.Antiaffinity, t)
				} else {
					b.Affinity.Affinity = append(b.Affinity.Affinity, a)
				}
			}
		default:
			return b, fail(k, where, "unknown key %q; a block has workers, strategy, invalidate, affinity", k.Value)
		}
	}
	if !haveWorkers {
		return b, fail(n, where+", workers", `missing: list the workers' node names, or "*"`)
	}
	return b, nil
}

func parseWorkers(where string, v *yaml.Node) (Workers, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value == "*" {
		return Workers{All: true}, nil
	}
	if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return Workers{}, fail(v, where, `must be a list of worker names or "*", got %q`, v.Value)
	}
	names, err := parseNames(where, v)
	if err != nil {
		return Workers{}, err
	}
	if len(names) == 0 {
		return Workers{}, fail(v, where, `the list is empty; name at least one worker, or "*"`)
	}
	return Workers{Names: names}, nil
}

// parseNames reads a list of non-empty strings.
func parseNames(where string, v *yaml.Node) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, fail(v, where, "must be a list of names, got %s", describe(v))
	}
	if len(v.Content) > maxNames {
		return nil, fail(v, where, "%d entries, the limit is %d", len(v.Content), maxNames)
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" || e.Value == "" || len(e.Value) > maxNameLen {
			return nil, fail(e, where, "each entry must be a name of 1 to %d characters, got %s", maxNameLen, describe(e))
		}
		out = append(out, e.Value)
	}
	return out, nil
}

func parseInvalidate(where string, v *yaml.Node) (Invalidate, error) {
	var inv Invalidate
	if v.Kind != yaml.MappingNode {
		return inv, fail(v, where, "must be a map with capacity_used and/or max_concurrent_invocations, got %s", describe(v))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, x := v.Content[i], v.Content[i+1]
		if seen[k.Value] {
			return inv, fail(k, where, "%s appears twice", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "capacity_used":
			// FunLess writes "50%"; a bare 50 means the same.
			s := strings.TrimSpace(x.Value)
			n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
			if x.Kind != yaml.ScalarNode || err != nil || n < 0 || n > 100 {
				return inv, fail(x, where+".capacity_used", `must be a percentage from "0%%" to "100%%", got %s`, describe(x))
			}
			inv.CapacityUsed = Limit{Set: true, N: n}
		case "max_concurrent_invocations":
			n, err := strconv.Atoi(x.Value)
			if x.Kind != yaml.ScalarNode || x.Tag != "!!int" || err != nil || n < 0 {
				return inv, fail(x, where+".max_concurrent_invocations", "must be an integer >= 0, got %s", describe(x))
			}
			inv.MaxConcurrentInvocations = Limit{Set: true, N: n}
		default:
			return inv, fail(k, where, "unknown key %q; invalidate has capacity_used, max_concurrent_invocations", k.Value)
		}
	}
	return inv, nil
}

// describe names a node's value for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}
