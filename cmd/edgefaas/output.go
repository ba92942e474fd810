package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// quietUsage makes cmd and its subcommands check --output and print no
// usage text for errors found after the arguments were parsed (an API
// error is not a usage error).
func quietUsage(cmd *cobra.Command) {
	cmd.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		cmd.SilenceUsage = true
		switch globalFlags.output {
		case "table", "json":
		default:
			return fmt.Errorf("--output must be table or json, not %q", globalFlags.output)
		}
		return nil
	}
}

// jsonOutput reports whether --output json was asked for.
func jsonOutput() bool { return globalFlags.output == "json" }

// newTable returns a tabwriter for aligned columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// printJSON prints v as JSON, indented.
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode the output: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// printRawJSON prints a JSON value as the function produced it: indented
// when pretty, byte for byte otherwise, with a final newline.
func printRawJSON(w io.Writer, raw json.RawMessage, pretty bool) error {
	if pretty {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err == nil {
			raw = buf.Bytes()
		}
	}
	out := append([]byte(nil), raw...)
	if len(out) == 0 || out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err := w.Write(out)
	return err
}

// isTerminal reports whether w is an interactive terminal (a character
// device other than /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}

// humanBytes formats a size in bytes with a binary unit.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// apiError turns a client error into the message a person reads: the API's
// detail, with a hint for the usual causes of 401 and unreachable cores.
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var ue *client.UnreachableError
	if errors.As(err, &ue) {
		return fmt.Errorf("%w; is it running? Start one with 'make run' or 'edgefaas dev', or point --host, %s or 'edgefaas config set host' at it", err, envHost)
	}
	var ae *client.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusUnauthorized:
			return fmt.Errorf("%s (give a token with --token, %s or 'edgefaas config set token TOKEN')", ae.Detail, envToken)
		case http.StatusForbidden:
			return fmt.Errorf("%s (give an admin token with --token, %s or 'edgefaas config set admin_token TOKEN')", ae.Detail, envAdminToken)
		}
		return errors.New(ae.Detail)
	}
	return err
}

// progress draws a one-line progress indicator on a terminal; on anything
// else it draws nothing.
type progress struct {
	w       io.Writer
	on      bool
	label   string
	mu      sync.Mutex
	last    time.Time
	stop    chan struct{}
	stopped sync.WaitGroup
}

// newProgress returns a progress line on stderr, active only if stderr is
// a terminal.
func newProgress(cmd *cobra.Command, label string) *progress {
	w := cmd.ErrOrStderr()
	return &progress{w: w, on: isTerminal(w), label: label}
}

// bytes shows how much of an upload has been sent.
func (p *progress) bytes(sent, total int64, done bool) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !done && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	pct := 100
	if total > 0 {
		pct = int(sent * 100 / total)
	}
	const width = 30
	bar := strings.Repeat("=", pct*width/100) + strings.Repeat(" ", width-pct*width/100)
	fmt.Fprintf(p.w, "\r%s [%s] %3d%% %s / %s\x1b[K", p.label, bar, pct, humanBytes(sent), humanBytes(total))
}

// spin shows msg with a spinner until done is called.
func (p *progress) spin(msg string) {
	if !p.on || p.stop != nil {
		return
	}
	p.stop = make(chan struct{})
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		frames := `|/-\`
		start := time.Now()
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			p.mu.Lock()
			fmt.Fprintf(p.w, "\r%s %c %s (%ds)\x1b[K", p.label, frames[i%len(frames)], msg, int(time.Since(start).Seconds()))
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// done erases the progress line.
func (p *progress) done() {
	if !p.on {
		return
	}
	if p.stop != nil {
		close(p.stop)
		p.stopped.Wait()
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r\x1b[K")
}
