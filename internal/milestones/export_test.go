package milestones

import "github.com/nats-io/nats.go/jetstream"

// StoreOn is a Store over kv, so that tests can put a wrapper around the
// real key-value bucket.
func StoreOn(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }
