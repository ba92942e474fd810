// Package ergonode holds what every ergo node of this project is started
// with, whether a core, a worker or a test's node.
package ergonode

import (
	"context"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// NoRegistrar is a registrar that registers nothing and resolves nothing.
// ergo's default starts a name service on *:4369 on every interface, and
// static routes alone, with no registrar, panic on the first remote send;
// nodes here find each other by static routes only.
type NoRegistrar struct{}

func (NoRegistrar) Register(context.Context, string, node.RegisterOptions) error { return nil }
func (NoRegistrar) RegisterProxy(string, int, node.ProxyFlags) error             { return nil }
func (NoRegistrar) UnregisterProxy(string) error                                 { return nil }
func (NoRegistrar) Resolve(string) (node.Route, error)                           { return node.Route{}, lib.ErrNoRoute }
func (NoRegistrar) ResolveProxy(string) (node.ProxyRoute, error) {
	return node.ProxyRoute{}, lib.ErrProxyNoRoute
}
func (NoRegistrar) Config() (node.RegistrarConfig, error)                      { return node.RegistrarConfig{}, nil }
func (NoRegistrar) ConfigItem(string) (etf.Term, error)                        { return nil, lib.ErrUnsupported }
func (NoRegistrar) SetConfigUpdateCallback(func(string, etf.Term) error) error { return nil }

var _ node.Registrar = NoRegistrar{}
