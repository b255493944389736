package memory_test

import (
	"testing"

	"github.com/sessionkit/sessionkit"
	"github.com/sessionkit/sessionkit/memory"
	"github.com/sessionkit/sessionkit/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) sessionkit.Provider {
		return memory.New(memory.Config{})
	})
}

func BenchmarkManager(b *testing.B)  { providertest.BenchManager(b, memory.New(memory.Config{})) }
func BenchmarkProvider(b *testing.B) { providertest.BenchProvider(b, memory.New(memory.Config{})) }
