package app

import (
	"errors"
	"fmt"
	"slices"
)

// Errors of Select.
var (
	// ErrNoValidWorkers: every block of the tag was invalidated and its
	// followup is "fail" (or the default tag's was).
	ErrNoValidWorkers = errors.New("no valid worker")
	// ErrNoMatchingTag: the script names neither the function's tag nor a
	// "default" tag.
	ErrNoMatchingTag = errors.New("no matching tag")
)

// Worker is what Select knows of one worker: a snapshot the scheduler
// takes of its table.
type Worker struct {
	Name string
	// TotalMemory and FreeMemory are the guests' share and what is free of
	// it, bytes, from the worker's last report.
	TotalMemory, FreeMemory int
	// Concurrent is how many calls run there now (for
	// max_concurrent_invocations).
	Concurrent int
	// Tags counts, by function tag, the calls in flight there (for affinity).
	Tags map[string]int
}

// Call is what Select needs of the call to place.
type Call struct {
	// Tag is the function's metadata tag ("" selects the default tag).
	Tag string
	// MemoryBytes is the function's declared capacity (0: none).
	MemoryBytes int
}

// Choice is Select's answer: either one Worker, or Platform with the
// workers the platform policy must choose among (Among; nil means every
// worker).
type Choice struct {
	Worker   string
	Platform bool
	Among    []string
	// Tag and Block say which rule decided (Block is 1-based; 0 when the
	// followup handed the call to the platform policy).
	Tag   string
	Block int
}

// Select places c according to the script, FunLess's way: the function's
// tag (or the "default" tag) gives a list of blocks, tried in order; a
// block's candidates are the workers it names that exist, minus the
// invalid ones (not enough free memory for the capacity, or an invalidate
// rule, or affinity); the first block with a valid worker decides by its
// strategy. When every block is invalidated the tag's followup applies:
// "fail" answers ErrNoValidWorkers, "default" tries the script's default
// tag (once, with that tag's own followup), or else hands the call to the
// platform policy over all workers. intn(n) returns a number in [0, n) for
// the random strategy.
func (s *Script) Select(c Call, workers []Worker, intn func(int) int) (Choice, error) {
	name := c.Tag
	tag, ok := s.Tags[name]
	if !ok {
		name = DefaultTag
		if tag, ok = s.Tags[DefaultTag]; !ok {
			return Choice{}, fmt.Errorf("%w: the script names neither tag %q nor a %q tag", ErrNoMatchingTag, c.Tag, DefaultTag)
		}
	}
	byName := make(map[string]*Worker, len(workers))
	for i := range workers {
		byName[workers[i].Name] = &workers[i]
	}
	if ch, ok := tag.place(name, c, workers, byName, intn); ok {
		return ch, nil
	}
	if tag.Followup == Default {
		if def, ok := s.Tags[DefaultTag]; ok && name != DefaultTag {
			if ch, ok := def.place(DefaultTag, c, workers, byName, intn); ok {
				return ch, nil
			}
			if def.Followup == Fail {
				return Choice{}, fmt.Errorf("%w: every block of tag %q and of the %q tag is invalidated", ErrNoValidWorkers, name, DefaultTag)
			}
		}
		return Choice{Platform: true, Tag: name}, nil
	}
	return Choice{}, fmt.Errorf("%w: every block of tag %q is invalidated and its followup is fail", ErrNoValidWorkers, name)
}

// place tries the tag's blocks in order.
func (t Tag) place(name string, c Call, workers []Worker, byName map[string]*Worker, intn func(int) int) (Choice, bool) {
	for i, b := range t.Blocks {
		var valid []string
		if b.Workers.All {
			// "*": every worker, by name, so best-first is deterministic.
			all := make([]string, 0, len(workers))
			for _, w := range workers {
				all = append(all, w.Name)
			}
			slices.Sort(all)
			for _, n := range all {
				if b.valid(byName[n], c) {
					valid = append(valid, n)
				}
			}
		} else {
			for _, n := range b.Workers.Names {
				if w := byName[n]; w != nil && b.valid(w, c) && !slices.Contains(valid, n) {
					valid = append(valid, n)
				}
			}
		}
		if len(valid) == 0 {
			continue
		}
		ch := Choice{Tag: name, Block: i + 1}
		switch b.Strategy {
		case Random:
			ch.Worker = valid[intn(len(valid))]
		case Platform:
			ch.Platform, ch.Among = true, valid
		default:
			ch.Worker = valid[0]
		}
		return ch, true
	}
	return Choice{}, false
}

// valid reports whether w may take c under block b: enough free memory for
// the declared capacity (FunLess's basic check), fewer calls than
// max_concurrent_invocations, memory in use plus the capacity within
// capacity_used percent of the total (a worker that reports no total is
// invalid for such a block), a call of every affinity tag in flight there,
// and none of any anti-affinity tag.
func (b Block) valid(w *Worker, c Call) bool {
	if c.MemoryBytes > w.FreeMemory {
		return false
	}
	if l := b.Invalidate.MaxConcurrentInvocations; l.Set && w.Concurrent >= l.N {
		return false
	}
	if l := b.Invalidate.CapacityUsed; l.Set {
		if w.TotalMemory <= 0 {
			return false
		}
		used := int64(w.TotalMemory-w.FreeMemory) + int64(c.MemoryBytes)
		if used*100 > int64(l.N)*int64(w.TotalMemory) {
			return false
		}
	}
	for _, a := range b.Affinity.Affinity {
		if w.Tags[a] == 0 {
			return false
		}
	}
	for _, a := range b.Affinity.Antiaffinity {
		if w.Tags[a] > 0 {
			return false
		}
	}
	return true
}
