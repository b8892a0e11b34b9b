// Package archtest holds a test that keeps docs/architecture.md true: the
// import graph it draws matches `go list`, each quirk row names canary
// tests that exist (or says none), and each lock it lists as held across a
// call into the client or a wait still exists. It has no other code.
package archtest
