package wasm

import (
	"context"
	"fmt"
	"os"

	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// jsTemplate is a JavaScript function's linear memory just after its
// script's top level ran in a new instance: the engine's runtime, the
// compiled script and whatever its top level built. Every later instance
// of the function starts from it, mapped copy-on-write (a dataImage),
// instead of reading the bytecode and running the top level again: the
// pages an instance only reads stay one copy in the page cache.
type jsTemplate struct {
	image *dataImage
	pages uint32 // the memory's size when it was taken
}

// jsPrepareMode is the frame mode that only runs a script's top level
// (runner.c): 'X' for bytecode, 'R' for source.
func jsPrepareMode(run byte) byte {
	if run == 'x' {
		return 'X'
	}
	return 'R'
}

// jsRunFrame is a call's input to a JavaScript instance: every instance
// is prepared (or started from the template) before its first call, so
// the frame carries only the arguments.
func jsRunFrame(s *jsScript, args []byte) []byte { return jsengine.Frame(s.mode, nil, args) }

// startJS readies a new instance of a JavaScript function for its first
// call: with a template, the instance (made without the engine's start
// function) is grown to the template's size; without one, the script's top
// level runs in it (its logs and errors are the call's) and its memory
// becomes the function's template. False with st.errMsg set if the top
// level failed.
func (e *Engine) startJS(ctx context.Context, m *Module, in *instance, tpl *jsTemplate, st *callState) (bool, error) {
	if tpl != nil {
		mem := in.mod.Memory()
		if have := mem.Size() / PageSize; have < tpl.pages {
			if _, ok := mem.Grow(tpl.pages - have); !ok {
				return false, fmt.Errorf("%w: the template's %d pages", ErrMemoryLimit, tpl.pages)
			}
		}
		return true, nil
	}
	run := st.input
	st.input = jsengine.Frame(jsPrepareMode(m.script.mode), m.script.code, nil)
	results, err := in.invoke.Call(ctx, uint64(len(st.input)))
	st.input = run
	e.stats.jsPrepared.Add(1)
	if err != nil {
		return false, err
	}
	if len(results) != 1 || uint32(results[0]) != 0 || st.errMsg != nil {
		if st.errMsg == nil {
			msg := "the script's top level failed without a message"
			st.errMsg = &msg
		}
		return false, nil
	}
	st.output, st.hasOutput = nil, false
	if m.life.template.Load() == nil {
		e.keepTemplate(m, in)
	}
	return true, nil
}

// keepTemplate makes in's memory the template of m's new instances, unless
// another call made one meanwhile. A template that cannot be written only
// costs the next instances their own top level run.
func (e *Engine) keepTemplate(m *Module, in *instance) {
	mem := in.mod.Memory()
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		return
	}
	var image uint64 // the memory's first bytes, mapped from an image
	if in.mem != nil {
		image = in.mem.image.len()
	}
	img, err := writeTemplate(e.cfg.CacheDir, b, image)
	if err != nil {
		e.log.Warn("JavaScript template not made: each instance runs the script's top level", "hash", m.Hash[:12], "err", err)
		return
	}
	tpl := &jsTemplate{image: img, pages: mem.Size() / PageSize}
	if !m.life.template.CompareAndSwap(nil, tpl) {
		img.close()
	}
}

// writeTemplate writes mem (whole wasm pages) to an unlinked file in dir.
// Unlike a module's data image it is not synced: the call that makes it
// waits for the write, and an fsync on a busy disk took hundreds of
// milliseconds; the kernel writes the pages back on its own, after which
// it may drop them like the image's.
//
// The pages the instance never wrote past its first image bytes (mapped
// from the engine's data image: their content is the file's, resident or
// not) are left a hole in the file (usedPages): they read as zeros, as
// they would in the memory, and the write does not read them, which would
// make each of them resident in the instance that made the template (a
// JavaScript instance's linear memory is 1.2 MiB, of which the runtime
// writes a tenth).
func writeTemplate(dir string, mem []byte, image uint64) (*dataImage, error) {
	f, err := os.CreateTemp(dir, ".js-template-*")
	if err != nil {
		return nil, fmt.Errorf("JavaScript template: %w", err)
	}
	os.Remove(f.Name())
	if err := writeUsed(f, mem, image); err != nil {
		f.Close()
		return nil, fmt.Errorf("JavaScript template: %w", err)
	}
	return &dataImage{f: f, size: uint64(len(mem))}, nil
}

// writeUsed writes mem to the empty file f: the first image bytes and
// every page usedPages reports used, in runs; the rest stays a hole. Where
// the page map cannot be read, all of mem.
func writeUsed(f *os.File, mem []byte, image uint64) error {
	used, err := usedPages(mem)
	if err != nil {
		_, err := f.Write(mem)
		return err
	}
	if err := f.Truncate(int64(len(mem))); err != nil {
		return err
	}
	ps := os.Getpagesize()
	write := func(p int) bool { return used[p] || uint64(p*ps) < image }
	for i := 0; i < len(used); i++ {
		if !write(i) {
			continue
		}
		j := i + 1
		for j < len(used) && write(j) {
			j++
		}
		from, to := i*ps, min(j*ps, len(mem))
		if _, err := f.WriteAt(mem[from:to], int64(from)); err != nil {
			return err
		}
		i = j // page j is not written (or past the end)
	}
	return nil
}
