// Package attacks is what a hostile tenant does to a single box, and the
// neighbour tenant who measures what it costs others: shared by the
// adversarial tests and the bench's attacks section. Every loop here runs
// until its context ends or its stop is called.
package attacks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// Neighbour is a second tenant calling its own hello, one call at a time.
type Neighbour struct {
	URL, Token string
	HC         *http.Client
}

// NewNeighbour makes the subject "neighbour" with admin and uploads its
// hello (the hello example's code).
func NewNeighbour(ctx context.Context, admin *client.Client, url string, hello []byte) (*Neighbour, error) {
	cred, err := admin.CreateSubject(ctx, "neighbour")
	if err != nil {
		return nil, fmt.Errorf("neighbour subject: %w", err)
	}
	c, err := client.New(url, cred.Token)
	if err != nil {
		return nil, err
	}
	if _, err := c.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "neighbour_hello", Code: hello}); err != nil {
		return nil, fmt.Errorf("the neighbour's upload: %w", err)
	}
	return &Neighbour{URL: url, Token: cred.Token, HC: &http.Client{Timeout: 60 * time.Second}}, nil
}

// Calls is what the neighbour saw.
type Calls struct {
	OK        int
	Wrong     []string        // every answer that was not hello's 200
	Latencies []time.Duration // of the OK calls, in order
}

// P99 is the 99th percentile of the OK calls' latencies (0 without any).
func (c Calls) P99() time.Duration {
	if len(c.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(c.Latencies)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)]
}

// During calls hello back to back until stop is called; stop returns the
// tally.
func (n *Neighbour) During() (stop func() Calls) {
	done := make(chan struct{})
	var got Calls
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			start := time.Now()
			status, body, err := Post(n.HC, n.URL+"/v1/fn/_/neighbour_hello", n.Token, `{"args":{"name":"neighbour"}}`)
			switch {
			case err != nil:
				got.Wrong = append(got.Wrong, err.Error())
			case status == http.StatusOK && strings.Contains(body, "Hello, neighbour!"):
				got.OK++
				got.Latencies = append(got.Latencies, time.Since(start))
			default:
				got.Wrong = append(got.Wrong, fmt.Sprintf("%d %.200s", status, body))
			}
		}
	}()
	return func() Calls {
		close(done)
		wg.Wait()
		return got
	}
}

// Post sends one authenticated JSON request and reads the answer.
func Post(hc *http.Client, url, token, body string) (status int, answer string, err error) {
	return PostBytes(hc, url, token, []byte(body))
}

// PostBytes is Post with the body as bytes.
func PostBytes(hc *http.Client, url, token string, body []byte) (status int, answer string, err error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// Box is the single box an attack hits, as its hostile tenant.
type Box struct {
	URL, Guest string
	User       *client.Client // the guest's client
	// Module returns a compiled module by its test name (e.g. "test/spin",
	// "sleep").
	Module func(name string) ([]byte, error)
	// PID is the box's process id (the connection flood lowers its open
	// files limit); nil when it is not known.
	PID func() int
}

// Attack is one hostile tenant's behaviour.
type Attack struct {
	Name, What string
	// Setup uploads what the attack needs (before the neighbour measures).
	Setup func(ctx context.Context, b Box) error
	// Run attacks until ctx ends and returns how its requests were
	// answered (status → count; "no answer" for transport errors).
	Run func(ctx context.Context, b Box) map[string]int
}

// All is every attack the bench runs on one box, briefly each, in this
// order: the connection flood last, as it lowers the box's open files
// limit while it runs. Not here: the full disk, which needs a box of its
// own (FullDisk), and the corrupt compile cache, which is no load the
// neighbour could be measured under (files changed while the box is
// stopped; tests/adversarial TestCompileCacheCorrupt runs it).
func All() []Attack {
	return []Attack{
		hostileCalls("spin", "test/spin", "two callers of a function that spins until its 1 s timeout", 2),
		hostileCalls("log flood", "test/emptylog", "two callers of a function logging empty lines until its log bound", 2),
		hostileCalls("newline flood", "test/newlines", "two callers of a function writing bare newlines to stderr, one write each", 2),
		{
			Name: "body flood", What: "16 callers sending 6 MiB bodies to the C hello, each at once after the last's answer, without Expect",
			Setup: func(ctx context.Context, b Box) error { return upload(ctx, b, "attack_body", "hello-c", 0) },
			Run: func(ctx context.Context, b Box) map[string]int {
				return BodyFlood(ctx, b, "attack_body", 16)
			},
		},
		{
			Name: "upload bomb", What: "two uploaders of a 165-byte module whose validation takes 256 MiB",
			Setup: func(context.Context, Box) error { return nil },
			Run: func(ctx context.Context, b Box) map[string]int {
				bomb := LocalsBomb(16, 16<<20)
				return loop(ctx, 2, func(*http.Client) string {
					c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					_, err := b.User.CreateFunction(c, client.DefaultModule, client.Upload{Name: "attack_bomb", Code: bomb})
					return clientAnswer(err, "201")
				})
			},
		},
		queueFlood(),
		listFlood(),
		idlePolls(),
		joinFlood(),
		connectionFlood(),
	}
}

// BodyFlood runs callers that each call the guest's function fn one call
// after another until ctx ends, each with the largest body an invocation
// may have (6 MiB), sent whole: no "Expect: 100-continue", and the next
// call as soon as one is answered, whatever its Retry-After. fn should be
// small code (the C hello): the flood is about bodies, and calls of a
// large module would also compete for the worker's compiled code.
func BodyFlood(ctx context.Context, b Box, fn string, callers int) map[string]int {
	body, _ := json.Marshal(map[string]any{"args": map[string]any{"pad": strings.Repeat("x", 6<<20-64)}})
	return loop(ctx, callers, func(hc *http.Client) string {
		return answer(PostBytes(hc, b.URL+"/v1/fn/_/"+fn, b.Guest, body))
	})
}

// hostileCalls is an attack of callers of one hostile module.
func hostileCalls(name, module, what string, callers int) Attack {
	fn := "attack_" + strings.ReplaceAll(name, " ", "_")
	return Attack{
		Name: name, What: what,
		Setup: func(ctx context.Context, b Box) error { return upload(ctx, b, fn, module, 1000) },
		Run: func(ctx context.Context, b Box) map[string]int {
			return loop(ctx, callers, func(hc *http.Client) string {
				return answer(Post(hc, b.URL+"/v1/fn/_/"+fn, b.Guest, `{"args":{}}`))
			})
		},
	}
}

func upload(ctx context.Context, b Box, fn, module string, timeoutMS int64) error {
	code, err := b.Module(module)
	if err != nil {
		return err
	}
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: fn, Code: code, Metadata: &client.Metadata{TimeoutMS: timeoutMS}}); err != nil {
		return fmt.Errorf("upload %s: %w", module, err)
	}
	return nil
}

func answer(status int, _ string, err error) string {
	if err != nil {
		return "no answer"
	}
	return fmt.Sprint(status)
}

// loop runs n goroutines doing one request after another until ctx ends,
// and counts the answers.
func loop(ctx context.Context, n int, do func(hc *http.Client) string) map[string]int {
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 2 * time.Minute}
			for ctx.Err() == nil {
				k := do(hc)
				mu.Lock()
				got[k]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// LocalsBomb is a module of a few dozen bytes whose funcs functions each
// declare n i32 locals: the decoder expands each declaration into one
// byte per local, so validating it takes about funcs×n bytes.
func LocalsBomb(funcs int, n uint32) []byte {
	leb := func(v uint32) []byte { return appendULEB(nil, uint64(v)) }
	section := func(id byte, body []byte) []byte {
		return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
	}
	fns, code := leb(uint32(funcs)), leb(uint32(funcs))
	body := append(append([]byte{1}, leb(n)...), 0x7f, 0x0b) // n × i32, end
	for range funcs {
		fns = append(fns, 0)
		code = append(append(code, leb(uint32(len(body)))...), body...)
	}
	mod := append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, section(1, []byte{1, 0x60, 0, 0})...) // one type: () -> ()
	return append(append(mod, section(3, fns)...), section(10, code)...)
}
