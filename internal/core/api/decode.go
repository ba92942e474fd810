package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// decodeStrict decodes exactly one JSON value from data into v, refusing
// unknown fields and wrong types, and returns a 400 apiError whose message
// names the offending field. what names the body for the message.
func decodeStrict(data []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %s: %s", what, describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "Bad Request: %s: unexpected data after the JSON value", what)
	}
	return nil
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "the body is empty, a JSON object was expected"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON is truncated"
	// json.Unmarshal's forms of the two above and of trailing data, which
	// a json.Decoder leaves to its next Token.
	case errors.As(err, &se) && se.Error() == "unexpected end of JSON input":
		return "the JSON is truncated"
	case errors.As(err, &se) && strings.HasSuffix(se.Error(), " after top-level value"):
		return "unexpected data after the JSON value"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return fmt.Sprintf("expected %s, got a JSON %s", jsonTypeName(te.Type.Kind().String()), te.Value)
		}
		return fmt.Sprintf("field %q must be %s, got a JSON %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ") + " (not part of this API)"
	default:
		return err.Error()
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a " + kind
}

// readBody reads a request body bounded by limit; over the limit the error
// becomes a 413 in writeAPIError. The body is read into one buffer sized
// from its Content-Length (bounded by limit): io.ReadAll grows its buffer
// step by step, garbage several times a large body's size, and the
// collections that garbage causes stall every tenant's calls. Without a
// Content-Length it grows as io.ReadAll's does.
func readBody(c *call, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(c.w, c.r.Body, limit)
	size := int64(512)
	if cl := c.r.ContentLength; cl >= 0 {
		size = min(cl, limit) + 1 // +1: the read that sees the end needs no room
	}
	data := make([]byte, 0, size)
	for {
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			return data, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, err
			}
			return nil, errorf(http.StatusBadRequest, "Bad Request: could not read the body: %v", err)
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// nameBody is FunLess's {"module":{"name":...}} and {"subject":{"name":...}}.
type nameBody struct {
	Name *string `json:"name"`
}

// decodeNamed decodes {"<key>":{"name":"..."}} and validates the name.
func decodeNamed(raw []byte, key, kind string) (string, error) {
	var nb *nameBody
	var err error
	switch key {
	case "module":
		var b struct {
			Module *nameBody `json:"module"`
		}
		err = decodeStrict(raw, &b, "request body")
		nb = b.Module
	case "subject":
		var b struct {
			Subject *nameBody `json:"subject"`
		}
		err = decodeStrict(raw, &b, "request body")
		nb = b.Subject
	default:
		return "", fmt.Errorf("decodeNamed: unknown key %q", key)
	}
	if err != nil {
		return "", err
	}
	if nb == nil || nb.Name == nil {
		return "", errorf(http.StatusBadRequest, `Bad Request: the body must be {"%s":{"name":"..."}}`, key)
	}
	if err := storage.CheckName(kind, *nb.Name); err != nil {
		return "", errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	return *nb.Name, nil
}

// invocationFields names the members an invocation body may have,
// FunLess's: "args", "callback", "scheduling".
var invocationFields = []string{"args", "callback", "scheduling"}

// bodySpan is a JSON value as it stands in the body it was decoded from.
// Its UnmarshalJSON keeps the slice encoding/json hands it, which
// json.Unmarshal takes from its input, where json.RawMessage copies it:
// only for json.Unmarshal of a buffer nobody changes afterwards (a
// json.Decoder reuses its buffer).
type bodySpan []byte

func (s *bodySpan) UnmarshalJSON(data []byte) error {
	*s = data
	return nil
}

// schedulingBody is an invocation's "scheduling" object, FunLess's
// {"language":"app","script":NAME} ("none" means the platform policy).
type schedulingBody struct {
	Language *string `json:"language"`
	Script   *string `json:"script"`
}

// invocationBody is an invocation body decoded and checked: what the
// invocation service needs of it.
type invocationBody struct {
	// Args is the JSON object of arguments; an empty body, a missing
	// "args" or null mean {}.
	Args json.RawMessage
	// Callback is the http(s) URL an asynchronous call's record is POSTed
	// to; "" for none.
	Callback string
	// Script is the APP script's name the call asks to be placed by; ""
	// for the platform's policy.
	Script string
}

// decodeInvocation decodes an invocation body once, strictly, and checks
// each field; its errors are 400s naming the field. It decodes with
// json.Unmarshal, not decodeStrict's json.Decoder, which copies the whole
// body into a buffer of its own, and takes the args where they stand in
// raw (argsOf): a large body is not copied again. Member names match
// exactly: json.Unmarshal would match "Args" as "args", but unknown
// members are refused here, not by encoding/json.
func decodeInvocation(raw []byte) (invocationBody, error) {
	out := invocationBody{Args: json.RawMessage("{}")}
	if len(bytes.TrimSpace(raw)) == 0 {
		return out, nil
	}
	var fields map[string]bodySpan
	if err := json.Unmarshal(raw, &fields); err != nil {
		return out, errorf(http.StatusBadRequest, "Bad Request: invocation body: %s", describeJSONError(err))
	}
	if err := refuseUnknownFields(fields, invocationFields); err != nil {
		return out, errorf(http.StatusBadRequest, "Bad Request: invocation body: %v", err)
	}
	if args := bytes.TrimSpace(fields["args"]); len(args) > 0 && string(args) != "null" {
		if args[0] != '{' {
			return out, errorf(http.StatusBadRequest, `Bad Request: "args" must be a JSON object, e.g. {"args":{"name":"world"}}`)
		}
		out.Args = argsOf(args, raw)
	}
	var callback string
	if cb := fields["callback"]; len(cb) > 0 {
		if err := json.Unmarshal(cb, &callback); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				te.Field = "callback"
			}
			return out, errorf(http.StatusBadRequest, "Bad Request: invocation body: %s", describeJSONError(err))
		}
	}
	if callback != "" {
		u, err := url.Parse(callback)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(callback) > maxCallbackLen {
			return out, errorf(http.StatusBadRequest, `Bad Request: "callback" must be an http or https URL of at most %d characters`, maxCallbackLen)
		}
		out.Callback = callback
	}
	script, err := decodeScheduling(json.RawMessage(fields["scheduling"]))
	if err != nil {
		return out, err
	}
	out.Script = script
	return out, nil
}

// refuseUnknownFields names the members of an object that are not among
// known, sorted so the same body gets the same answer.
func refuseUnknownFields(fields map[string]bodySpan, known []string) error {
	var unknown []string
	for name := range fields {
		if !slices.Contains(known, name) {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	switch len(unknown) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("unknown field %s (not part of this API)", unknown[0])
	}
	slices.Sort(unknown)
	return fmt.Errorf("unknown fields %s (not part of this API)", strings.Join(unknown, ", "))
}

// argsOf returns the args a call keeps, found in body: the body's own
// bytes when they are most of it, so a large body is not copied; a copy
// when they are less than half of it, so a call holding small args does
// not hold a large body with them. Their capacity ends where they do, so
// an append to them cannot write into the body.
func argsOf(args, body []byte) json.RawMessage {
	if 2*len(args) < len(body) {
		return bytes.Clone(args)
	}
	return json.RawMessage(args[:len(args):len(args)])
}

// maxCallbackLen bounds a callback URL.
const maxCallbackLen = 2048

// decodeScheduling returns the script name a "scheduling" object asks for
// ("" for none).
func decodeScheduling(raw json.RawMessage) (string, error) {
	sch := strings.TrimSpace(string(raw))
	if sch == "" || sch == "null" {
		return "", nil
	}
	var sb schedulingBody
	if err := decodeStrict(raw, &sb, "scheduling"); err != nil {
		return "", err
	}
	switch {
	case sb.Language == nil:
		return "", errorf(http.StatusBadRequest, `Bad Request: scheduling: "language" is missing; use {"language":"app","script":"NAME"} or {"language":"none"}`)
	case *sb.Language == "none":
		if sb.Script != nil {
			return "", errorf(http.StatusBadRequest, `Bad Request: scheduling: "script" is only for "language":"app"`)
		}
		return "", nil
	case *sb.Language != "app":
		return "", errorf(http.StatusBadRequest, `Bad Request: scheduling: language %q is not supported; edgefaas runs "app" scripts (or "none")`, *sb.Language)
	case sb.Script == nil || *sb.Script == "":
		return "", errorf(http.StatusBadRequest, `Bad Request: scheduling: "script" (the APP script's name) is missing`)
	}
	return *sb.Script, nil
}
