package arch_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// packageScript installs, upgrades, removes and purges the package with
// dpkg in a throwaway root: an overlay over this machine's / in a private
// mount namespace (unshare -m), with /run and /tmp empty, so the machine
// itself is never touched and no service manager is found. It prints one
// "name=value" line per fact the test checks.
const packageScript = `set -eu
mount -t tmpfs tmpfs "$WORK"
mkdir -p "$WORK/upper" "$WORK/work" "$WORK/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/root"
mount --bind /proc "$WORK/root/proc"
mount --bind /dev "$WORK/root/dev"
mount -t tmpfs tmpfs "$WORK/root/run"
mount -t tmpfs tmpfs "$WORK/root/tmp"
cp "$OLD" "$WORK/root/tmp/old.deb"
cp "$NEW" "$WORK/root/tmp/new.deb"
chroot "$WORK/root" /bin/sh -eu -c '
fact() { echo "$1=$2"; }
dpkg -i /tmp/old.deb >/dev/null
fact installed "$(dpkg-query -W -f="\${Version}" edgefaas) $(/usr/bin/edgefaas --version)"
fact user "$(getent passwd edgefaas | cut -d: -f1,6,7)"
fact data "$(stat -c %a:%U /var/lib/edgefaas)"
fact settings "$(stat -c %a:%G /etc/edgefaas):$(stat -c %a:%G /etc/edgefaas/core.env)"
fact units "$(ls /lib/systemd/system | grep edgefaas | tr "\n" " ")"
echo "# edited here" >> /etc/edgefaas/core.env
touch /var/lib/edgefaas/store
dpkg -i --force-confold /tmp/new.deb >/dev/null
fact upgraded "$(dpkg-query -W -f="\${Version}" edgefaas)"
fact conffile-kept "$(grep -c "# edited here" /etc/edgefaas/core.env)"
fact data-kept-on-upgrade "$(test -e /var/lib/edgefaas/store && echo yes || echo no)"
dpkg -r edgefaas >/dev/null
fact removed-binary "$(test -e /usr/bin/edgefaas && echo present || echo gone)"
fact removed-data "$(test -e /var/lib/edgefaas/store && echo kept || echo gone)"
dpkg --purge edgefaas >/dev/null
fact purged-data "$(test -e /var/lib/edgefaas && echo kept || echo gone)"
fact purged-settings "$(test -e /etc/edgefaas && echo kept || echo gone)"
fact purged-user "$(getent passwd edgefaas >/dev/null && echo kept || echo gone)"
'
`

// TestDebianPackage checks make dist's amd64 package: its contents and
// conffiles with dpkg-deb, lintian's verdict, then an install, an upgrade
// to a later version (keeping an edited setting and the data), a remove
// (keeping the data) and a purge (deleting the data, the settings and the
// service user), all with dpkg on a throwaway copy of this machine.
func TestDebianPackage(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg", "lintian", "unshare", "chroot", "adduser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test-deps installs it): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("installs the package in a private mount namespace: needs root")
	}
	dir := dist(t)
	root := testmodules.Root(t)
	old := filepath.Join(dir, "edgefaas_0.0.0+archtest_amd64.deb")

	contents, err := exec.Command("dpkg-deb", "--contents", old).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, contents)
	}
	for _, f := range []string{"./usr/bin/edgefaas", "./lib/systemd/system/edgefaas-core.service", "./lib/systemd/system/edgefaas-worker.service", "./etc/edgefaas/core.env", "./etc/edgefaas/worker.env", "./usr/share/doc/edgefaas/copyright"} {
		if !strings.Contains(string(contents), f+"\n") && !strings.Contains(string(contents), f+" ") {
			t.Errorf("the package lacks %s:\n%s", f, contents)
		}
	}
	conffiles, err := exec.Command("dpkg-deb", "--info", old, "conffiles").CombinedOutput()
	if err != nil || !strings.Contains(string(conffiles), "/etc/edgefaas/core.env") {
		t.Errorf("conffiles: %v\n%s", err, conffiles)
	}
	if out, err := exec.Command("lintian", "--fail-on", "error", old).CombinedOutput(); err != nil {
		t.Errorf("lintian: %v\n%s", err, out)
	}

	// The upgrade: the same binary packaged as a later version.
	newDir := t.TempDir()
	if out, err := exec.Command(filepath.Join(root, "build", "dist-tool"), "deb", "-version", "v0.0.1-archtest", "-arch", "amd64",
		"-binary", filepath.Join(dir, "edgefaas-linux-amd64"), "-root", root, "-out", newDir).CombinedOutput(); err != nil {
		t.Fatalf("package the later version: %v\n%s", err, out)
	}
	work := t.TempDir()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c", packageScript)
	cmd.Env = append(os.Environ(), "WORK="+work, "OLD="+old, "NEW="+filepath.Join(newDir, "edgefaas_0.0.1+archtest_amd64.deb"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("install, upgrade and purge: %v\n%s", err, out)
	}
	facts := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			facts[k] = v
		}
	}
	for k, want := range map[string]string{
		"user":                 "edgefaas:/var/lib/edgefaas:/usr/sbin/nologin",
		"data":                 "700:edgefaas",
		"settings":             "750:edgefaas:640:edgefaas",
		"units":                "edgefaas-core.service edgefaas-worker.service ",
		"conffile-kept":        "1",
		"data-kept-on-upgrade": "yes",
		"removed-binary":       "gone",
		"removed-data":         "kept",
		"purged-data":          "gone",
		"purged-settings":      "gone",
		"purged-user":          "gone",
	} {
		if facts[k] != want {
			t.Errorf("%s = %q, want %q", k, facts[k], want)
		}
	}
	if !strings.HasPrefix(facts["installed"], "0.0.0+archtest ") || !strings.Contains(facts["installed"], testVersion) || facts["upgraded"] != "0.0.1+archtest" {
		t.Errorf("versions: installed %q, upgraded %q", facts["installed"], facts["upgraded"])
	}
	t.Logf("dpkg in the throwaway root:\n%s", out)
}
