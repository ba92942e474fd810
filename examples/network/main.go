// Command network makes {"count"} (16 by default) outbound HTTP GETs to
// {"url"} and returns the time of each: the paper's network benchmark.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

type sample struct {
	Start  int64 `json:"start_ns"`
	End    int64 `json:"end_ns"`
	Status int   `json:"status"`
	Bytes  int   `json:"bytes"`
}

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		args := struct {
			URL   string `json:"url"`
			Count int    `json:"count"`
		}{Count: 16}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.URL == "" {
			return nil, errors.New(`missing "url"`)
		}
		if args.Count < 1 || args.Count > 1000 {
			return nil, fmt.Errorf("count must be between 1 and 1000, got %d", args.Count)
		}
		out := make([]sample, 0, args.Count)
		for i := 0; i < args.Count; i++ {
			start := time.Now().UnixNano()
			resp, err := edgefaas.Fetch("GET", args.URL, nil, nil)
			if err != nil {
				return nil, fmt.Errorf("request %d: %w", i+1, err)
			}
			out = append(out, sample{start, time.Now().UnixNano(), resp.Status, len(resp.Body)})
		}
		return map[string]any{"requests": out}, nil
	})
}

func main() {}
