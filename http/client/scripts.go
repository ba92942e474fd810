package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"time"
)

// Script is an APP scheduling script as the core answers it: FunLess's
// {id, name, script} (script being the parsed, normalised form) plus the
// owner, whether it is shared with every subject (an admin created it),
// the YAML as uploaded and its creation time.
type Script struct {
	ID        int64           `json:"id"`
	Name      string          `json:"name"`
	Script    json.RawMessage `json:"script"`
	Owner     string          `json:"owner"`
	Shared    bool            `json:"shared"`
	Source    string          `json:"source"`
	CreatedAt time.Time       `json:"created_at"`
}

// ListScripts lists the APP scripts the caller can see.
func (c *Client) ListScripts(ctx context.Context) ([]Script, error) {
	return do[[]Script](ctx, c, http.MethodGet, pathOf("v1", "scripts", "app"), nil)
}

// CreateScript uploads an APP script (YAML) under name. The core refuses
// an invalid script with a 400 *Error naming the field.
func (c *Client) CreateScript(ctx context.Context, name string, yaml []byte) (Script, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	err := mw.WriteField("name", name)
	if err == nil {
		var w interface{ Write([]byte) (int, error) }
		if w, err = mw.CreateFormFile("file", name+".yml"); err == nil {
			_, err = w.Write(yaml)
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return Script{}, fmt.Errorf("encode the script upload: %w", err)
	}
	r := request{method: http.MethodPost, path: pathOf("v1", "scripts", "app"), contentType: mw.FormDataContentType(),
		body: body.Bytes()}
	var sc Script
	err = c.call(ctx, r, &sc)
	return sc, err
}

// GetScript returns one APP script.
func (c *Client) GetScript(ctx context.Context, name string) (Script, error) {
	return do[Script](ctx, c, http.MethodGet, pathOf("v1", "scripts", "app", name), nil)
}

// DeleteScript deletes an APP script (its owner or an admin).
func (c *Client) DeleteScript(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "scripts", "app", name), nil, nil)
}

// InvokeScript runs a function like Invoke, placed by the APP script
// named script: the body carries "scheduling":{"language":"app","script":...}.
func (c *Client) InvokeScript(ctx context.Context, module, name string, args json.RawMessage, script string) (json.RawMessage, error) {
	body := invokeBody(args)
	body["scheduling"] = appScheduling(script)
	return do[json.RawMessage](ctx, c, http.MethodPost, pathOf("v1", "fn", module, name), body)
}

// appScheduling is the "scheduling" member that places a call by the APP
// script named script.
func appScheduling(script string) map[string]string {
	return map[string]string{"language": "app", "script": script}
}
