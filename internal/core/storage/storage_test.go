package storage

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func refs(t *testing.T, s *Store, code string) int64 {
	t.Helper()
	n, err := s.CodeRefs(HashCode([]byte(code)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCodeIsContentAddressed(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if _, err := s.CreateModule("m", "alice"); err != nil {
		t.Fatal(err)
	}
	mk := func(mod, name, code string) Function {
		t.Helper()
		f, err := s.CreateFunction(s.seenModule(mod), NewFunction{Name: name, Owner: "alice", Code: []byte(code), ABI: "funless"})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := mk("m", "a", "code1")
	mk("m", "b", "code1")
	mk(DefaultModule, "c", "code1")
	if a.Version != 1 || a.Size != 5 || a.Hash != HashCode([]byte("code1")) {
		t.Errorf("record %+v", a)
	}
	if n := refs(t, s, "code1"); n != 3 {
		t.Errorf("refs = %d, want 3", n)
	}
	st, _ := s.Stats()
	if st.CodeBlobs != 1 || st.CodeBytes != 5 || st.Functions != 3 || st.Modules != 2 {
		t.Errorf("stats %+v", st)
	}

	// Updating to the same code keeps the count; to new code moves it.
	if _, err := s.UpdateFunction(s.seenFunction("m", "a"), FunctionUpdate{Code: []byte("code1"), ABI: "funless"}); err != nil {
		t.Fatal(err)
	}
	if n := refs(t, s, "code1"); n != 3 {
		t.Errorf("refs after same-code update = %d, want 3", n)
	}
	ch, err := s.UpdateFunction(s.seenFunction("m", "a"), FunctionUpdate{Code: []byte("code22"), ABI: "wasi"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Old.Hash != HashCode([]byte("code1")) || ch.New.Hash != HashCode([]byte("code22")) || ch.New.Version != 3 || ch.New.ABI != "wasi" {
		t.Errorf("change %+v -> %+v", ch.Old, ch.New)
	}
	if refs(t, s, "code1") != 2 || refs(t, s, "code22") != 1 {
		t.Error("refs not moved by update")
	}

	// Deleting the module releases its functions' code.
	fns, err := s.DeleteModule(s.seenModule("m"))
	if err != nil || len(fns) != 2 {
		t.Fatalf("delete module: %v %v", fns, err)
	}
	if refs(t, s, "code1") != 1 || refs(t, s, "code22") != 0 {
		t.Error("refs not released by module delete")
	}
	if _, err := s.Code(HashCode([]byte("code22"))); !errors.Is(err, ErrNotFound) {
		t.Errorf("code of a deleted last reference still stored: %v", err)
	}
	if _, err := s.DeleteFunction(s.seenFunction(DefaultModule, "c")); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Stats()
	if st.CodeBlobs != 0 || st.CodeBytes != 0 || st.Functions != 0 || st.Modules != 1 {
		t.Errorf("stats after deleting everything %+v", st)
	}
}

func TestMetadataKeptWithoutUpdate(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	md := Metadata{Tag: "t", Capacity: 64, TimeoutMS: 100, AllowedHosts: []string{"a.com"}}
	if _, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: "f", Code: []byte("x"), Metadata: md}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.UpdateFunction(s.seenFunction(DefaultModule, "f"), FunctionUpdate{Code: []byte("y")})
	if err != nil {
		t.Fatal(err)
	}
	if ch.New.Metadata.Capacity != 64 || ch.New.Metadata.AllowedHosts[0] != "a.com" {
		t.Errorf("metadata lost: %+v", ch.New.Metadata)
	}
	ch, err = s.UpdateFunction(s.seenFunction(DefaultModule, "f"), FunctionUpdate{Metadata: &Metadata{Tag: "u"}})
	if err != nil {
		t.Fatal(err)
	}
	if ch.New.Metadata.Tag != "u" || ch.New.Metadata.Capacity != 0 || ch.New.Hash != HashCode([]byte("y")) {
		t.Errorf("metadata update: %+v", ch.New)
	}
}

func TestSentinelErrors(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	checks := []struct {
		what string
		err  error
		want error
	}{}
	add := func(what string, err, want error) {
		checks = append(checks, struct {
			what      string
			err, want error
		}{what, err, want})
	}
	_, err := s.CreateModule("m", "a")
	add("create", err, nil)
	_, err = s.CreateModule("m", "b")
	add("duplicate module", err, ErrExists)
	_, err = s.CreateModule(DefaultModule, "b")
	add("create _", err, ErrExists)
	_, err = s.CreateModule("a/b", "b")
	add("bad name", err, ErrInvalidName)
	_, err = s.GetModule("nope")
	add("missing module", err, ErrNotFound)
	_, err = s.DeleteModule(s.seenModule(DefaultModule))
	add("delete _", err, ErrDefaultModule)
	_, err = s.RenameModule(s.seenModule(DefaultModule), "x")
	add("rename _", err, ErrDefaultModule)
	_, err = s.CreateFunction(s.seenModule("nope"), NewFunction{Name: "f", Code: []byte("x")})
	add("function in missing module", err, ErrNotFound)
	_, err = s.CreateFunction(s.seenModule("m"), NewFunction{Name: "", Code: []byte("x")})
	add("empty function name", err, ErrInvalidName)
	_, err = s.GetFunction("m", "nope")
	add("missing function", err, ErrNotFound)
	_, err = s.UpdateFunction(s.seenFunction("m", "nope"), FunctionUpdate{})
	add("update missing", err, ErrNotFound)
	_, err = s.DeleteFunction(s.seenFunction("m", "nope"))
	add("delete missing", err, ErrNotFound)
	_, err = s.RotateToken("nobody")
	add("rotate missing", err, ErrNotFound)
	add("revoke missing", s.RevokeToken("nobody"), ErrNotFound)
	_, err = s.Authenticate("bogus")
	add("bad token", err, ErrUnauthenticated)
	_, err = s.Authenticate("")
	add("empty token", err, ErrUnauthenticated)
	for _, c := range checks {
		if c.want == nil && c.err != nil || c.want != nil && !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
}

func TestRenameMovesFunctions(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	s.CreateModule("a", "o")
	s.CreateModule("taken", "o")
	s.CreateFunction(s.seenModule("a"), NewFunction{Name: "f", Code: []byte("1")})
	s.CreateFunction(s.seenModule("a"), NewFunction{Name: "g", Code: []byte("2")})
	if _, err := s.RenameModule(s.seenModule("a"), "taken"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	changes, err := s.RenameModule(s.seenModule("a"), "b")
	if err != nil || len(changes) != 2 || changes[0].Old.Module != "a" || changes[0].New.Module != "b" {
		t.Fatalf("rename: %v %+v", err, changes)
	}
	fns, err := s.ListFunctions("b")
	if err != nil || len(fns) != 2 || fns[0].Name != "f" || fns[1].Name != "g" || fns[0].Module != "b" {
		t.Errorf("functions after rename: %+v %v", fns, err)
	}
	if _, err := s.ListFunctions("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old module still listed: %v", err)
	}
	m, _ := s.GetModule("b")
	if m.Owner != "o" {
		t.Errorf("owner lost in rename: %+v", m)
	}
	// A prefix scan of module "b" must not see module "bb".
	s.CreateModule("bb", "o")
	s.CreateFunction(s.seenModule("bb"), NewFunction{Name: "h", Code: []byte("3")})
	fns, _ = s.ListFunctions("b")
	if len(fns) != 2 {
		t.Errorf("module b lists %d functions, want 2", len(fns))
	}
}

func TestSubjectsAndBootstrap(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "db"))
	tokens := filepath.Join(dir, TokensFileName)
	created, err := s.Bootstrap(tokens)
	if err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	raw, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "Admin=") || !strings.HasPrefix(lines[1], "Guest=") {
		t.Fatalf("tokens file %q", raw)
	}
	adminTok := strings.TrimPrefix(lines[0], "Admin=")
	guestTok := strings.TrimPrefix(lines[1], "Guest=")
	if sub, err := s.Authenticate(adminTok); err != nil || sub.Name != AdminSubject || !sub.Admin {
		t.Errorf("admin token: %+v %v", sub, err)
	}
	if sub, err := s.Authenticate(guestTok); err != nil || sub.Name != GuestSubject || sub.Admin {
		t.Errorf("guest token: %+v %v", sub, err)
	}
	// Nothing in the database holds the token itself.
	subs, _ := s.ListSubjects()
	for _, sub := range subs {
		if sub.TokenHash == adminTok || sub.TokenHash == guestTok {
			t.Error("token stored in clear")
		}
	}
	if err := s.RevokeToken(AdminSubject); !errors.Is(err, ErrAdminRevoke) {
		t.Errorf("revoke admin: %v", err)
	}
	if err := s.RevokeToken(GuestSubject); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(guestTok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	newTok, err := s.RotateToken(GuestSubject)
	if err != nil || len(newTok) < 43 {
		t.Fatalf("rotate: %q %v", newTok, err)
	}
	s.Close()

	s = open(t, filepath.Join(dir, "db"))
	defer s.Close()
	if created, err := s.Bootstrap(tokens); err != nil || created {
		t.Errorf("second bootstrap: %v %v", created, err)
	}
	if sub, err := s.Authenticate(newTok); err != nil || sub.Name != GuestSubject {
		t.Errorf("rotated token after reopen: %+v %v", sub, err)
	}
	if _, err := s.Authenticate(guestTok); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old token after reopen: %v", err)
	}
}

func TestSchemaVersionChecked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.db.Set(keySchema(), []byte("99"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "schema version") {
		t.Errorf("open with a future schema: %v", err)
	}
}

// TestReadCacheFollowsWrites: reads served from the in-memory copy see
// every committed change at once (revocation, rotation, updates, deletes),
// also when the read that filled the cache raced with the commit.
func TestReadCacheFollowsWrites(t *testing.T) {
	s := open(t, t.TempDir())
	tok, err := s.CreateSubject("ada", false)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second read is served from the cache
		if _, err := s.Authenticate(tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeToken("ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token still accepted: %v", err)
	}
	newTok, err := s.RotateToken("ada")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(newTok); err != nil {
		t.Fatalf("rotated token refused: %v", err)
	}

	// A read that began before a commit must not put its stale copy back.
	key := keyModule("m")
	_, _, gen := s.cache.lookup(key)
	if _, err := s.CreateModule("m", "ada"); err != nil {
		t.Fatal(err)
	}
	s.cache.keep(key, nil, gen) // the racing reader's "absent"
	if _, err := s.GetModule("m"); err != nil {
		t.Fatalf("stale absence served after the commit: %v", err)
	}
}

// TestDecodedCacheCopies: decoded function records served from memory
// follow updates, and a caller changing its copy changes nothing else.
func TestDecodedCacheCopies(t *testing.T) {
	s := open(t, t.TempDir())
	if _, err := s.CreateFunction(s.seenModule("_"), NewFunction{Name: "f", Owner: "o", Code: []byte("code-1"), ABI: "wasi",
		Metadata: Metadata{AllowedHosts: []string{"a.example"}}}); err != nil {
		t.Fatal(err)
	}
	f1, _ := s.GetFunction("_", "f")
	f1.Metadata.AllowedHosts[0] = "mutated"
	f2, _ := s.GetFunction("_", "f") // from the decoded cache
	if f2.Metadata.AllowedHosts[0] != "a.example" {
		t.Fatalf("a caller's change leaked into the cache: %v", f2.Metadata.AllowedHosts)
	}
	if _, err := s.UpdateFunction(s.seenFunction("_", "f"), FunctionUpdate{Metadata: &Metadata{AllowedHosts: []string{"b.example"}}}); err != nil {
		t.Fatal(err)
	}
	if f3, _ := s.GetFunction("_", "f"); f3.Metadata.AllowedHosts[0] != "b.example" || f3.Version != 2 {
		t.Fatalf("stale record after update: %+v", f3)
	}
}

// TestJoinTokenOnce: a join token works once, is stored only as its hash,
// and an expired one is refused (and spent).
func TestJoinTokenOnce(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	tok, jt, err := s.CreateJoinToken("worker@10.0.0.7", time.Hour)
	if err != nil || jt.Node != "worker@10.0.0.7" {
		t.Fatalf("create: %v %+v", err, jt)
	}
	found := false
	s.scan([]byte("j/"), func(k, v []byte) error {
		found = true
		if strings.Contains(string(k)+string(v), tok) {
			t.Errorf("the token is stored in clear: %s", k)
		}
		return nil
	})
	if !found {
		t.Fatal("no j/ record")
	}
	if got, err := s.ConsumeJoinToken(tok, nil); err != nil || got.Node != "worker@10.0.0.7" {
		t.Fatalf("first use: %v %+v", err, got)
	}
	if _, err := s.ConsumeJoinToken(tok, nil); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("second use: %v", err)
	}
	old, _, _ := s.CreateJoinToken("", -time.Second)
	if _, err := s.ConsumeJoinToken(old, nil); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.ConsumeJoinToken("nonsense", nil); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("unknown: %v", err)
	}
}

// BenchmarkSubjectEgress: the read the core makes per invocation for a
// function with allowed_hosts.
func BenchmarkSubjectEgress(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateSubject("alice", false); err != nil {
		b.Fatal(err)
	}
	if err := s.SetSubjectEgress("alice", []string{"api.example.com:443", "*.partner.net"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := s.SubjectEgress("alice"); err != nil || !ok {
			b.Fatal(err)
		}
	}
}

// seenModule is the module as a caller reads it before a write (a
// missing one by its name only).
func (s *Store) seenModule(name string) Module {
	m, err := s.GetModule(name)
	if err != nil {
		return Module{Name: name}
	}
	return m
}

// seenFunction is seenModule for a function.
func (s *Store) seenFunction(module, name string) Function {
	f, err := s.GetFunction(module, name)
	if err != nil {
		return Function{Module: module, Name: name}
	}
	return f
}

// TestCheckpointReplace: a store's contents replaced by another's
// checkpoint are that store's, keys it lacks are gone, and no restore is
// left marked.
func TestCheckpointReplace(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	b := open(t, t.TempDir())
	defer b.Close()
	if _, err := a.CreateFunction(Module{Name: DefaultModule}, NewFunction{Name: "fa", Owner: "alice", Code: []byte("a"), ABI: "funless"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateFunction(Module{Name: DefaultModule}, NewFunction{Name: "fb", Owner: "alice", Code: []byte("b"), ABI: "funless"}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cp")
	if err := a.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	if err := b.Replace(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetFunction(DefaultModule, "fa"); err != nil {
		t.Errorf("the replaced store lacks fa: %v", err)
	}
	if _, err := b.GetFunction(DefaultModule, "fb"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the replaced store still holds fb: %v", err)
	}
	if n := refs(t, b, "b"); n != 0 {
		t.Errorf("code b still has %d references", n)
	}
	if r, err := b.Restoring(); err != nil || r {
		t.Errorf("Restoring = %v, %v after a whole replace", r, err)
	}
}

// TestLogIndexIsWrittenWithTheWrite: once SetLogIndex is called, a write
// records the index in its batch; a store that never set one reads 0.
func TestLogIndexIsWrittenWithTheWrite(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if i, err := s.LogIndex(); err != nil || i != 0 {
		t.Fatalf("LogIndex = %d, %v on a new store", i, err)
	}
	if _, err := s.CreateModule("m", "alice"); err != nil {
		t.Fatal(err)
	}
	if i, _ := s.LogIndex(); i != 0 {
		t.Fatalf("a single core's write recorded log index %d", i)
	}
	s.SetLogIndex(42)
	if _, err := s.CreateModule("n", "alice"); err != nil {
		t.Fatal(err)
	}
	if i, err := s.LogIndex(); err != nil || i != 42 {
		t.Errorf("LogIndex = %d, %v, want 42", i, err)
	}
}
