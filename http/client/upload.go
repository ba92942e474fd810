package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"strconv"
)

// encodeUpload builds FunLess's multipart body: name, code (a file part),
// metadata (JSON text) and wait_for_workers.
func encodeUpload(up Upload) (contentType string, body *bytes.Buffer, err error) {
	body = &bytes.Buffer{}
	body.Grow(len(up.Code) + 1024)
	mw := multipart.NewWriter(body)
	field := func(name, value string) error {
		w, err := mw.CreateFormField(name)
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, value)
		return err
	}
	if up.Name != "" {
		if err := field("name", up.Name); err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if up.Metadata != nil {
		md := *up.Metadata
		if md.AllowedHosts == nil {
			md.AllowedHosts = []string{}
		}
		raw, err := json.Marshal(md)
		if err != nil {
			return "", nil, fmt.Errorf("encode the metadata: %w", err)
		}
		if err := field("metadata", string(raw)); err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if up.Events != nil {
		if err := field("events", string(up.Events)); err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if up.Sinks != nil {
		if err := field("sinks", string(up.Sinks)); err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if up.WaitForWorkers != nil {
		if err := field("wait_for_workers", strconv.FormatBool(*up.WaitForWorkers)); err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if up.Code != nil {
		name := up.Filename
		if name == "" {
			name = "function.wasm"
		}
		w, err := mw.CreateFormFile("code", name)
		if err == nil {
			_, err = w.Write(up.Code)
		}
		if err != nil {
			return "", nil, fmt.Errorf("encode the upload: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return "", nil, fmt.Errorf("encode the upload: %w", err)
	}
	return mw.FormDataContentType(), body, nil
}

// progressReader reports how much of a body has been read.
type progressReader struct {
	r     io.Reader
	sent  int64
	total int64
	done  bool
	fn    func(sent, total int64, done bool)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	switch {
	case p.done:
	case err == io.EOF || p.total >= 0 && p.sent >= p.total:
		p.done = true
		p.fn(p.sent, p.total, true)
	case n > 0:
		p.fn(p.sent, p.total, false)
	}
	return n, err
}
