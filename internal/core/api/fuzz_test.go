package api

import (
	"bytes"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// checkAPIError fails unless err is nil or a 400/413 apiError: decoding
// client input must never produce a 500 or panic.
func checkAPIError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ae *apiError
	if !errors.As(err, &ae) || (ae.status != http.StatusBadRequest && ae.status != http.StatusRequestEntityTooLarge) || ae.detail == "" {
		t.Fatalf("decoding error is not a 400/413 with a detail: %#v", err)
	}
}

// FuzzParseUpload feeds arbitrary bodies to the multipart upload decoder.
// Seeds are in testdata/fuzz/FuzzParseUpload.
func FuzzParseUpload(f *testing.F) {
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nhello\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		const maxCode = 1 << 10
		up, err := parseUpload(contentType, bytes.NewReader(body), maxCode)
		checkAPIError(t, err)
		if err != nil {
			return
		}
		if int64(len(up.Code)) > maxCode {
			t.Fatalf("code of %d bytes passed a %d-byte limit", len(up.Code), maxCode)
		}
		if up.Metadata != nil {
			for _, h := range up.Metadata.AllowedHosts {
				if len(h) > maxHostLen || !referenceHostRE.MatchString(h) {
					t.Fatalf("invalid host %q accepted", h)
				}
			}
		}
	})
}

// FuzzDecodeJSON feeds arbitrary bytes to every JSON body decoder: module
// and subject bodies, invocation bodies and function metadata.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"module":{"name":"m"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, key := range []string{"module", "subject"} {
			name, err := decodeNamed(raw, key, key)
			checkAPIError(t, err)
			if err == nil && !referenceNameRE.MatchString(name) {
				t.Fatalf("invalid %s name %q accepted", key, name)
			}
		}
		body, err := decodeInvocation(raw)
		checkAPIError(t, err)
		if err == nil && (len(body.Args) == 0 || body.Args[0] != '{') {
			t.Fatalf("args %q accepted but not an object", body.Args)
		}
		if err == nil && body.Callback != "" && !strings.HasPrefix(strings.ToLower(body.Callback), "http://") && !strings.HasPrefix(strings.ToLower(body.Callback), "https://") {
			t.Fatalf("callback %q accepted but not an http(s) URL", body.Callback)
		}
		md, err := decodeMetadata(raw)
		checkAPIError(t, err)
		if err == nil && md != nil && (md.Capacity < -1 || md.TimeoutMS < 0 || md.TimeoutMS > maxTimeoutMS) {
			t.Fatalf("out-of-range metadata accepted: %+v", md)
		}
	})
}

// The reference rules the fuzz targets check accepted input against,
// written independently of the validators under test (checking with the
// validator itself could never fail).
var (
	referenceNameRE = regexp.MustCompile(`^[_a-zA-Z0-9]{1,160}$`)
	referenceHostRE = regexp.MustCompile(`^(\*[a-zA-Z0-9.:\[\]-]*|[a-zA-Z0-9.:\[\]-]+)$`)
)

// FuzzValidName checks name validation against FunLess's rule, and that an
// accepted name can never contain the storage key separator.
func FuzzValidName(f *testing.F) {
	f.Add("hello_World_42")
	f.Fuzz(func(t *testing.T, name string) {
		ok := storage.ValidName(name)
		if ok != referenceNameRE.MatchString(name) {
			t.Fatalf("ValidName(%q) = %v, FunLess's rule says %v", name, ok, !ok)
		}
		err := storage.CheckName("function", name)
		if (err == nil) != ok {
			t.Fatalf("CheckName(%q) = %v disagrees with ValidName = %v", name, err, ok)
		}
		if err != nil && !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("CheckName error %v is not ErrInvalidName", err)
		}
		if ok && bytes.ContainsAny([]byte(name), "/\x00") {
			t.Fatalf("accepted name %q contains a key separator", name)
		}
	})
}
