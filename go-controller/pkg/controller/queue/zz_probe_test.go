package queue

import (
	"testing"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

func TestProbe(t *testing.T) {
	kc := fake.NewSimpleClientset()
	_ = informers.NewSharedInformerFactory(kc, 0)
	_ = record.NewFakeRecorder(1)
}
