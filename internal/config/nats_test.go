package config_test

import (
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/config"
)

// NATS credentials: a token or a user with a password, from flags or the
// environment; anything else is refused with a clear message.
func TestNATSCredentials(t *testing.T) {
	key := []string{"--jwt-secret", strings.Repeat("k", 32)}
	c, err := config.Load(append(key, "--nats-listen", "127.0.0.1:4222"), []string{"TETHER_NATS_TOKEN=tok"})
	if err != nil || c.NATSToken != "tok" {
		t.Fatalf("token from the environment: %v %+v", err, c)
	}
	c, err = config.Load(append(key, "--nats-user", "u", "--nats-password", "p"), nil)
	if err != nil || c.NATSUser != "u" || c.NATSPassword != "p" {
		t.Fatalf("user and password: %v", err)
	}
	for args, want := range map[string]string{
		"--nats-token t --nats-user u --nats-password p": "configure either nats-token or nats-user and nats-password, not both",
		"--nats-user u":     "nats-user and nats-password go together",
		"--nats-password p": "nats-user and nats-password go together",
	} {
		_, err := config.Load(append(key, strings.Fields(args)...), nil)
		if err == nil || err.Error() != want {
			t.Errorf("%s: err = %v, want %q", args, err, want)
		}
	}
}

// Storage sizes take the usual suffixes.
func TestStorageSettings(t *testing.T) {
	c, err := config.Load([]string{"--jwt-secret", strings.Repeat("k", 32), "--storage-reserve", "1GiB"},
		[]string{"TETHER_JETSTREAM_MAX_STORE=20GiB"})
	if err != nil {
		t.Fatal(err)
	}
	if c.StorageReserve != 1<<30 || c.JetStreamMaxStore != 20<<30 {
		t.Fatalf("storage-reserve %d, jetstream-max-store %d", c.StorageReserve, c.JetStreamMaxStore)
	}
	if d := config.Defaults(); d.StorageReserve != 128<<20 || d.JetStreamMaxStore != 0 {
		t.Fatalf("defaults: storage-reserve %d, jetstream-max-store %d", d.StorageReserve, d.JetStreamMaxStore)
	}
}
