// Package storage keeps the core's durable state in one pebble database:
// modules, function records, content-addressed code and API subjects.
//
// Every mutation the API acknowledges is written as one synced pebble batch,
// so a function record, its code and the code's reference count change
// together or not at all, and a kill -9 after the reply loses nothing.
//
// Key layout (names match ^[_a-zA-Z0-9]+$, so "/" never occurs inside one):
//
//	meta/schema            schema version
//	m/<module>             Module (JSON)
//	f/<module>/<function>  Function (JSON); a module's functions are a prefix scan of f/<module>/
//	c/<sha256 hex>         code bytes, stored once per hash
//	r/<sha256 hex>         codeRef (JSON): how many function versions use the code, and its size
//	s/<subject>            Subject (JSON), holding the sha256 of its token
//	t/<sha256 hex of token> subject name: the token lookup index
//	app/<script>           Script (JSON): an APP scheduling script
//	meta/script_seq        the last Script id given
package storage
