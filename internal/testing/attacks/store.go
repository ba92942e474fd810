package attacks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// The attacks on what the core stores and reads back: the asynchronous
// queue, the activation records' lists and their long polls.

// queueFlood queues asynchronous calls with 4 MiB of args each to a
// function no worker can run (a tag nobody has), one after another: the
// args wait on disk, and beyond the tenant's share the core answers 429.
func queueFlood() Attack {
	const fn = "attack_nowhere"
	return Attack{
		Name: "queue flood", What: "a caller queuing asynchronous calls with 4 MiB of args to a function no worker can run",
		Setup: func(ctx context.Context, b Box) error {
			code, err := b.Module("test/echo")
			if err != nil {
				return err
			}
			_, err = b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: fn, Code: code, Metadata: &client.Metadata{Tag: "nowhere"}})
			if err != nil {
				return fmt.Errorf("upload %s: %w", fn, err)
			}
			return nil
		},
		Run: func(ctx context.Context, b Box) map[string]int {
			args, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 4<<20)})
			return loop(ctx, 1, func(*http.Client) string {
				c, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				_, err := b.User.InvokeAsync(c, client.DefaultModule, fn, args, "")
				return clientAnswer(err, "202")
			})
		},
	}
}

// listRecords is how many records the list flood's function leaves before
// it lists them: each is the most a call may leave (64 KiB of control
// bytes in its logs, six bytes each in JSON, and a 60 KiB result), so a
// list of all of them, answered whole, would be about 16 MiB.
const listRecords = 40

// listFlood lists limit=1000 of a function's most expensive records,
// three callers at once, each reading its whole answer.
func listFlood() Attack {
	const fn = "attack_bloat"
	return Attack{
		Name: "list flood", What: fmt.Sprintf("three callers listing limit=1000 of %d records of 64 KiB logs each", listRecords),
		Setup: func(ctx context.Context, b Box) error {
			code, err := b.Module("test/ctlbloat")
			if err != nil {
				return err
			}
			if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: fn, Code: code}); err != nil {
				return fmt.Errorf("upload %s: %w", fn, err)
			}
			before, err := recordsWritten(ctx, b)
			if err != nil {
				return err
			}
			for i := range listRecords {
				if _, err := b.User.Invoke(ctx, client.DefaultModule, fn, json.RawMessage(`{}`)); err != nil {
					return fmt.Errorf("call %d of %s: %w", i, fn, err)
				}
			}
			// Records are written off the request path, in batches.
			for {
				n, err := recordsWritten(ctx, b)
				if err != nil {
					return err
				}
				if n >= before+listRecords {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("waiting for %s's records: %w", fn, ctx.Err())
				case <-time.After(50 * time.Millisecond):
				}
			}
		},
		Run: func(ctx context.Context, b Box) map[string]int {
			return loop(ctx, 3, func(hc *http.Client) string {
				req, _ := http.NewRequest(http.MethodGet, b.URL+"/v1/activations?function="+fn+"&limit=1000", nil)
				req.Header.Set("Authorization", "Bearer "+b.Guest)
				resp, err := hc.Do(req)
				if err != nil {
					return "no answer"
				}
				defer resp.Body.Close()
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					return "no answer"
				}
				return fmt.Sprint(resp.StatusCode)
			})
		},
	}
}

// idlePolls holds eight long polls (wait=60) on a function nobody calls,
// from the oldest id, while the neighbour's calls commit records: each
// commit must not make the core scan again for them.
func idlePolls() Attack {
	const (
		fn       = "attack_idle"
		polls    = 8
		oldestID = "00000000000000000000000000"
	)
	return Attack{
		Name: "idle long polls", What: "eight long polls on a function nobody calls, held while the neighbour's records are committed",
		Setup: func(ctx context.Context, b Box) error { return upload(ctx, b, fn, "test/echo", 0) },
		Run: func(ctx context.Context, b Box) map[string]int {
			return loop(ctx, polls, func(*http.Client) string {
				_, err := b.User.ListActivationsPage(ctx, client.ActivationFilter{Function: fn, After: oldestID, Wait: 60 * time.Second})
				if ctx.Err() != nil {
					return "held to the end"
				}
				return clientAnswer(err, "200")
			})
		},
	}
}

// clientAnswer is how a call of the Go client was answered: ok when err
// is nil, else the API's status or "no answer".
func clientAnswer(err error, ok string) string {
	var apiErr *client.Error
	switch {
	case err == nil:
		return ok
	case errors.As(err, &apiErr):
		return fmt.Sprint(apiErr.Status)
	}
	return "no answer"
}

// recordsWritten reads edgefaas_activation_records_written_total from the
// box's metrics, as its guest.
func recordsWritten(ctx context.Context, b Box) (float64, error) {
	const series = "edgefaas_activation_records_written_total"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.URL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+b.Guest)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metrics: no %s (%v)", series, sc.Err())
}
