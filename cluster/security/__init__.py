"""Keys and certificates: secrets' encryption, the PKI, sealed node keys.

`crypto` (AES-256-GCM data keys wrapped by a key-encryption key, autolock),
`pki` (the cluster's root CA, node certificates, join-token digests),
`node_keys` (a manager's TLS key sealed under autolock), `expiry` (how long
certificates live, when to renew them) and `renewal` (a node's renewal loop,
given a way to reach the leader), `roles` (the OU each role's certificate
states).  All cryptography comes from the `cryptography` package; nothing
is hand-rolled.  That package costs a process about 9 MB, and an idle
manager needs none of it, so only `pki` imports it at the top: the others
import it in the functions that encrypt, sign or derive, and reading a
certificate's dates (`expiry.Validity`) or a peer's name (``ssl``) does not.

May import: `raft.runtime` (its TLS identities), `cryptography`, the
standard library.
"""
