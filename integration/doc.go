// Package integration holds tests that combine several providers in one
// application, against real servers. It has no code of its own.
package integration
