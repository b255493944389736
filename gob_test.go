package sessionkit

import (
	"encoding/gob"
	"sync"
)

var gobOnce sync.Once

func registerGob() { gobOnce.Do(func() { gob.Register(profile{}) }) }
