package main

import (
	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/core/triggers/broker"
	"github.com/edgefaas/edgefaas/internal/egress"
)

// triggerFlags are the core's flags for functions' events: the embedded
// MQTT broker. Brokers that functions name are outbound destinations
// under the same policy as functions' own requests (--allow-host,
// --egress-allow, --allow-net).
type triggerFlags struct {
	broker      string
	brokerUsers string
}

func (f *triggerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.broker, "mqtt-broker", "", "run an embedded MQTT broker on HOST:PORT for MQTT triggers (e.g. 127.0.0.1:1883; a non-loopback address needs --mqtt-broker-users)")
	fl.StringVar(&f.brokerUsers, "mqtt-broker-users", "", "file of username:password lines the embedded broker requires; each user may use only the topics NAME and NAME/... (default: anyone on loopback, every topic)")
}

// config builds the triggers' configuration over the operator's egress
// policy.
func (f *triggerFlags) config(policy egress.Config) core.TriggersConfig {
	c := egress.New(policy)
	return core.TriggersConfig{
		Dial:    c.DialNamedHost,
		Allowed: c.CheckNamedHost,
		Broker:  broker.Config{Addr: f.broker, UsersFile: f.brokerUsers},
	}
}
