package broker

import "testing"

// TestPermits: a subject's grant covers its own name and what lies under
// it, wildcards counting as characters; "#" covers everything.
func TestPermits(t *testing.T) {
	bob := []string{"bob/"}
	for topic, want := range map[string]bool{
		"bob": true, "bob/in": true, "bob/#": true, "bob/+/x": true,
		"#": false, "+/in": false, "+": false, "bobby/in": false, "alice/in": false, "$SYS/#": false, "/bob/in": false,
	} {
		if got := Permits(bob, topic); got != want {
			t.Errorf("bob on %q: %v, want %v", topic, got, want)
		}
	}
	if !Permits([]string{"#"}, "alice/in") || Permits(nil, "bob/in") {
		t.Error("# or no grant")
	}
}

// TestTriggerLogin: a trigger's login passes only with its own subject's
// password, which another start of the broker does not accept.
func TestTriggerLogin(t *testing.T) {
	a := &acl{triggerKey: []byte("k1")}
	b := &acl{triggerKey: []byte("k2")}
	pw := triggerPassword(a.triggerKey, "bob")
	if !a.authenticate([]byte(TriggerUserPrefix+"bob"), []byte(pw)) {
		t.Fatal("bob's trigger refused")
	}
	if a.authenticate([]byte(TriggerUserPrefix+"alice"), []byte(pw)) || b.authenticate([]byte(TriggerUserPrefix+"bob"), []byte(pw)) ||
		a.authenticate([]byte(TriggerUserPrefix), []byte(triggerPassword(a.triggerKey, ""))) {
		t.Fatal("a trigger login passed for another subject or key")
	}
	if g := a.grants([]byte(TriggerUserPrefix + "bob")); len(g) != 1 || g[0] != "bob/" {
		t.Fatalf("grants %v", g)
	}
	a.admin = func(s string) bool { return s == "root" }
	if g := a.grants([]byte(TriggerUserPrefix + "root")); len(g) != 1 || g[0] != "#" {
		t.Fatalf("admin grants %v", g)
	}
}
