package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Activation is the record of one invocation (GET /v1/activations/:id).
type Activation struct {
	ID              string          `json:"id"`
	Module          string          `json:"module"`
	Function        string          `json:"function"`
	Version         uint64          `json:"version"`
	Hash            string          `json:"hash"`
	Subject         string          `json:"subject"`
	Worker          string          `json:"worker"`
	Async           bool            `json:"async"`
	Status          string          `json:"status"`
	QueuedAt        time.Time       `json:"queued_at"`
	StartedAt       *time.Time      `json:"started_at"`
	DurationMS      float64         `json:"duration_ms"`
	Error           string          `json:"error"`
	Result          json.RawMessage `json:"result"`
	ResultTruncated bool            `json:"result_truncated"`
	Logs            []string        `json:"logs"`
	LogsTruncated   bool            `json:"logs_truncated"`
	Attempts        int             `json:"attempts"`
	Trigger         json.RawMessage `json:"trigger,omitempty"` // what started it, for triggered activations
}

// Final reports whether the activation has finished (not queued or running).
func (a Activation) Final() bool { return a.Status != "queued" && a.Status != "running" }

// InvokeAsync queues a function call and returns its activation id once
// the core has stored it durably. callback, if not empty, is a URL the core
// POSTs the finished record to.
func (c *Client) InvokeAsync(ctx context.Context, module, name string, args json.RawMessage, callback string) (string, error) {
	return c.InvokeAsyncScript(ctx, module, name, args, callback, "")
}

// InvokeAsyncScript is InvokeAsync with the call placed by the APP script
// named script when it runs (none if empty; see InvokeScript).
func (c *Client) InvokeAsyncScript(ctx context.Context, module, name string, args json.RawMessage, callback, script string) (string, error) {
	body := invokeBody(args)
	if callback != "" {
		body["callback"] = callback
	}
	if script != "" {
		body["scheduling"] = appScheduling(script)
	}
	out, err := do[struct {
		ID string `json:"activation_id"`
	}](ctx, c, http.MethodPost, pathOf("v1", "fn", module, name)+"?async=true", body)
	return out.ID, err
}

// GetActivation returns one activation record.
func (c *Client) GetActivation(ctx context.Context, id string) (Activation, error) {
	return do[Activation](ctx, c, http.MethodGet, pathOf("v1", "activations", id), nil)
}

// ActivationFilter selects records for ListActivations; zero fields do not
// filter.
type ActivationFilter struct {
	Module, Function, Status string
	// Limit bounds the records returned (the core's default is 50).
	Limit int
	// Before lists records older than this id; After only newer ones.
	Before, After string
	// Wait, with After, makes the core wait up to this long (60 s at most)
	// for a newer record: a long poll.
	Wait time.Duration
}

// ListActivations returns records newest first, at most f.Limit (the
// core's default, 50, if 0). The core answers in pages bounded by bytes;
// ListActivations follows each page's cursor until it has the records
// asked for or there are no more.
func (c *Client) ListActivations(ctx context.Context, f ActivationFilter) ([]Activation, error) {
	want := f.Limit
	if want <= 0 {
		want = defaultListLimit
	}
	var all []Activation
	for {
		f.Limit = want - len(all)
		page, err := c.ListActivationsPage(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Activations...)
		if page.NextBefore == "" || len(all) >= want {
			return all, nil
		}
		// The rest of the same list: older records, no waiting.
		f.Before, f.Wait = page.NextBefore, 0
	}
}

// defaultListLimit is the core's page length when none is asked for.
const defaultListLimit = 50

// ActivationPage is one answer of the core to a list request.
type ActivationPage struct {
	Activations []Activation
	// NextBefore, if not empty, is where the page stopped before the end
	// of the list (the limit, the core's bound on a page's bytes, or on
	// the records one request examines): list again with Before set to
	// it, and the same filters, for the rest.
	NextBefore string
}

// ListActivationsPage returns one page of records, newest first.
func (c *Client) ListActivationsPage(ctx context.Context, f ActivationFilter) (ActivationPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"module": f.Module, "function": f.Function, "status": f.Status, "before": f.Before, "after": f.After} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Wait > 0 {
		q.Set("wait", strconv.Itoa(int(f.Wait/time.Second)))
	}
	path := "/v1/activations"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	_, raw, err := c.send(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return ActivationPage{}, err
	}
	var page struct {
		Data       *[]Activation `json:"data"`
		NextBefore string        `json:"next_before"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return ActivationPage{}, fmt.Errorf("GET %s: the answer is not JSON: %w", path, err)
	}
	if page.Data == nil {
		return ActivationPage{}, fmt.Errorf(`GET %s: the answer has no "data" member`, path)
	}
	return ActivationPage{Activations: *page.Data, NextBefore: page.NextBefore}, nil
}
