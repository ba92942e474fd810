// Package triggers runs a function when something outside happens: a
// message on an MQTT topic, or a cron schedule's tick. Each firing becomes
// an asynchronous activation (package activations' durable queue), run as
// the function's owner.
//
// What a function's `events` may say, the trigger keys and the cron tick
// bookkeeping are plain functions in package eventspec; Manager is the
// runtime that owns the MQTT connections and cron timers, one supervised
// goroutine per trigger.
package triggers
