// Package storage keeps the core's durable state in one pebble database:
// modules, function records, content-addressed code, API subjects, APP
// scripts, activation records and the async queue, the sinks' outbox,
// trigger state, per-subject egress bounds and quotas, and node credentials.
//
// Every mutation the API acknowledges is written as one synced pebble batch,
// so a function record, its code and the code's reference count change
// together or not at all, and a kill -9 after the reply loses nothing.
//
// Key layout (names match ^[_a-zA-Z0-9]+$, so "/" never occurs inside one).
// keys.go spells every key; TestDocListsEveryKey checks this list against it.
//
//	meta/schema             schema version
//	meta/bootstrapped       when first boot created the admin and guest subjects
//	meta/script_seq         the last Script id given
//	meta/log_index          in a core group: the replicated log's last entry applied (8 bytes, big endian)
//	meta/restoring          in a core group: present while a snapshot replaces the contents
//	meta/node_ca            in a core group: NodeCA (JSON), the group's node CA certificate and key
//	meta/secrets_keys/<id>  in a core group: a rotation's new secrets key, sealed under the key current before it (JSON string)
//	m/<module>              Module (JSON)
//	f/<module>/<function>   Function (JSON); a module's functions are a prefix scan of f/<module>/
//	c/<sha256 hex>          code bytes, stored once per hash
//	r/<sha256 hex>          codeRef (JSON): how many function versions use the code, and its size
//	s/<subject>             Subject (JSON), holding the sha256 of its token
//	t/<sha256 hex of token> subject name: the token lookup index
//	e/<subject>             the subject's egress bound (JSON host list)
//	quota/<subject>         Quota (JSON): the subject's quota, set by an admin (none: DefaultQuota)
//	app/<script>            Script (JSON): an APP scheduling script
//	a/<activation id>       Activation (binary codec, or JSON before it); ids sort by time
//	q/<activation id>       QueuedCall (JSON): an async call whose record is not final yet
//	o/<activation id>       SinkJob (JSON): the outbox of results awaiting sink delivery
//	g/instance              the random trigger namespace (MQTT client id prefix)
//	g/cron/<key>            CronState (JSON): a cron trigger's last tick
//	j/<sha256 hex of token> JoinToken (JSON): an unused, unexpired node join token
//	n/<node name>           NodeCert (JSON): a token-joined node's certificate serials
package storage
