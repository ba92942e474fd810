package broker

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func connect(addr, user, pass string) error {
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprint("c", time.Now().UnixNano()%1e6)).SetConnectRetry(false)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("timeout")
	}
	if tok.Error() == nil {
		c.Disconnect(10)
	}
	return tok.Error()
}

// TestLocalOnlyUnlessUsers: a non-loopback address needs a users file;
// with one, clients must authenticate; on loopback without one, anyone
// local connects.
func TestLocalOnlyUnlessUsers(t *testing.T) {
	if _, err := Start(Config{Addr: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "--mqtt-broker-users") {
		t.Fatalf("a public address without users: %v", err)
	}
	open := freeAddr(t)
	b, err := Start(Config{Addr: open, StatePath: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := connect(open, "", ""); err != nil {
		t.Fatalf("anonymous on loopback: %v", err)
	}

	users := filepath.Join(t.TempDir(), "users")
	os.WriteFile(users, []byte("# site\nsensor:s3cret\n"), 0o600)
	authed := freeAddr(t)
	b2, err := Start(Config{Addr: authed, UsersFile: users})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if err := connect(authed, "sensor", "s3cret"); err != nil {
		t.Fatalf("known user: %v", err)
	}
	if err := connect(authed, "sensor", "wrong"); err == nil {
		t.Fatal("a wrong password connected")
	}
	if err := connect(authed, "", ""); err == nil {
		t.Fatal("anonymous connected to an authenticated broker")
	}
	os.WriteFile(users, []byte("nopassword\n"), 0o600)
	if _, err := Start(Config{Addr: freeAddr(t), UsersFile: users}); err == nil {
		t.Fatal("a malformed users file was accepted")
	}
}
