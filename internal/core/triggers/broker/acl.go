package broker

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TriggerUserPrefix starts the username of the core's own trigger
// clients: "edgefaas-trigger:" and the function owner's subject name.
// A users file may not name a user so.
const TriggerUserPrefix = "edgefaas-trigger:"

// user is one users-file login and the topics it may publish and
// subscribe to: those under its name.
type user struct {
	password string
	grants   []string // "NAME/"
}

// acl is the broker's authentication and topic ACL hook. Every client
// that authenticates is a subject: a users-file user (its name is the
// subject, its topics are under "NAME/") or a
// trigger of the core (its owner's topics, or all for an admin's). With
// anonymous (loopback without a users file) an unauthenticated client is
// one of the box's own processes and may use every topic.
type acl struct {
	mqtt.HookBase
	users     map[string]user
	anonymous bool
	// triggerKey makes the trigger clients' passwords (TriggerPassword);
	// admin says whether a subject's triggers see every topic.
	triggerKey []byte
	admin      func(subject string) bool
}

func (h *acl) ID() string { return "edgefaas-acl" }

func (h *acl) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

// triggerPassword is the password of subject's trigger clients.
func triggerPassword(key []byte, subject string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil))
}

// authenticate reports whether a client may connect: a trigger client
// with its password, a users-file user with hers, or anyone when the
// broker is anonymous.
func (h *acl) authenticate(username, password []byte) bool {
	name := string(username)
	if subject, ok := strings.CutPrefix(name, TriggerUserPrefix); ok {
		return subject != "" && hmac.Equal([]byte(triggerPassword(h.triggerKey, subject)), password)
	}
	if u, ok := h.users[name]; ok {
		return hmac.Equal([]byte(u.password), password)
	}
	return h.anonymous
}

// grants are the topic filters of a client that authenticated with
// username.
func (h *acl) grants(username []byte) []string {
	name := string(username)
	if subject, ok := strings.CutPrefix(name, TriggerUserPrefix); ok {
		if h.admin != nil && h.admin(subject) {
			return []string{"#"}
		}
		return []string{subject + "/"}
	}
	if u, ok := h.users[name]; ok {
		return u.grants
	}
	if h.anonymous {
		return []string{"#"}
	}
	return nil
}

func (h *acl) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.authenticate(pk.Connect.Username, pk.Connect.Password) {
		return true
	}
	h.Log.Info("MQTT client refused: unknown user or wrong password", "username", string(pk.Connect.Username), "remote", cl.Net.Remote)
	return false
}

// OnACLCheck allows a topic (publish) or filter (subscribe) when it lies
// under one of the client's grants. A filter's wildcards count as
// characters: "#" or "+/x" lie under no subject's prefix, "alice/#"
// under alice's.
func (h *acl) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if Permits(h.grants(cl.Properties.Username), topic) {
		return true
	}
	h.Log.Info("MQTT topic refused by the ACL", "username", string(cl.Properties.Username), "topic", topic, "publish", write)
	return false
}

// Permits reports whether topic (a topic or a filter) lies under one of
// grants: "#" grants every topic; "NAME/" grants NAME itself and every
// topic or filter that starts with "NAME/".
func Permits(grants []string, topic string) bool {
	for _, g := range grants {
		if g == "#" || topic == strings.TrimSuffix(g, "/") || strings.HasPrefix(topic, g) {
			return true
		}
	}
	return false
}
