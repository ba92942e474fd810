// Package sinks delivers the results of a function's successful
// activations to the destinations the function declares (FunLess's
// "sinks"): a CouchDB-compatible database, a webhook, an MQTT topic.
//
// What a sink spec may say and what a target shows are in package
// sinkspec; how long a failed delivery is retried (Policy) is plain Go
// here, tested without a node; the Dispatcher is the core's runtime that
// delivers from the outbox, under the operator's egress policy, and keeps
// each activation record's "sinks" list current.
package sinks
