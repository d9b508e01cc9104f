package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/externalport"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/namespace"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/node"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/pod"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/policy"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/controller/service"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/metrics"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
)

// runControllers runs while this replica leads: caches first, then each
// controller's start-up reconciliation, then the workers.
func runControllers(ctx context.Context, cfg *config.Controller, kc kubernetes.Interface, dc dynamic.Interface, reg prometheus.Registerer, ready *atomic.Bool) error {
	start := time.Now()
	nb, err := nbops.NewClient(ctx, cfg.NBAddresses, nbops.ClientOptions{CertFile: cfg.NBCert, KeyFile: cfg.NBKey, CAFile: cfg.NBCACert})
	if err != nil {
		return fmt.Errorf("connect to NB %v: %w", cfg.NBAddresses, err)
	}
	defer nb.Close()

	recorder, stopEvents := kube.NewEventRecorder(ctx, kc, kube.ControllerComponent)
	defer stopEvents()
	cs, queues, err := startControllers(ctx, cfg, kc, dc, nb, reg, recorder)
	if err != nil {
		return err
	}
	// Ready once the initial state is programmed: every queue drained.
	queue.WaitIdle(ctx, 20*time.Millisecond, queues...)
	txns, ops := cs.tx.Stats()
	klog.InfoS("ready", "after", time.Since(start), "nbTransactions", txns, "nbOperations", ops)
	ready.Store(true)
	<-ctx.Done()
	return nil
}

// startControllers builds the controllers, syncs their caches, runs each
// one's start-up reconciliation in dependency order and starts the
// workers; it returns the queues to wait on.
func startControllers(ctx context.Context, cfg *config.Controller, kc kubernetes.Interface, dc dynamic.Interface, nb client.Client,
	reg prometheus.Registerer, recorder record.EventRecorder, txOpts ...nbops.TransactorOption) (*controllers, []*queue.Controller, error) {
	if !hasExternalPorts(kc) {
		klog.InfoS("the ExternalPort CRD is not installed (dist/crds): external ports are off until it is and kovn-controller restarts")
		dc = nil
	}
	cs, err := newControllers(cfg, kc, dc, nb, reg, recorder, txOpts...)
	if err != nil {
		return nil, nil, err
	}

	cs.factory.Start(ctx.Done())
	for typ, ok := range cs.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, nil, fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	if cs.dynFactory != nil {
		cs.dynFactory.Start(ctx.Done())
		for typ, ok := range cs.dynFactory.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return nil, nil, fmt.Errorf("cache of %v did not sync", typ)
			}
		}
	}
	for name, s := range map[string]func(context.Context) error{"node": cs.node.Start, "namespace": cs.ns.Start} {
		if err := s(ctx); err != nil {
			return nil, nil, fmt.Errorf("start %s controller: %w", name, err)
		}
	}
	// Pods come after nodes: their start-up needs the node subnets; so do
	// services, which need the cluster load-balancer group.
	if err := cs.pod.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start pod controller: %w", err)
	}
	if err := cs.svc.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start service controller: %w", err)
	}
	// External ports after pods: in underlay mode they share the pods' pool.
	if cs.ep != nil {
		if err := cs.ep.Start(ctx); err != nil {
			return nil, nil, fmt.Errorf("start external port controller: %w", err)
		}
	}
	if err := cs.policy.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start policy controller: %w", err)
	}
	queues := cs.queues()
	for _, q := range queues {
		go q.Run(ctx)
	}
	return cs, queues, nil
}

// controllers are the leader's controllers, wired to their informers.
type controllers struct {
	factory    informers.SharedInformerFactory
	dynFactory dynamicinformer.DynamicSharedInformerFactory // nil without the ExternalPort CRD
	ep         *externalport.Controller
	tx         *nbops.Transactor
	node       *node.Controller
	ns         *namespace.Controller
	pod        *pod.Controller
	svc        *service.Controller
	policy     *policy.Controller
}

// queues are the controllers' workqueues; their names are the values of
// the controller label of the kovn_controller_* metrics.
func (cs *controllers) queues() []*queue.Controller {
	qs := []*queue.Controller{cs.node.Queue, cs.ns.Queue, cs.pod.Queue, cs.svc.Queue, cs.policy.Queue}
	if cs.ep != nil {
		qs = append(qs, cs.ep.Queue)
	}
	return qs
}

// newControllers builds the controllers on nb and registers every metric
// of kovn-controller with reg; nothing starts yet. The metrics test builds
// them the same way to compare what is registered with docs/metrics.md.
// dc nil leaves external ports out.
func newControllers(cfg *config.Controller, kc kubernetes.Interface, dc dynamic.Interface, nb client.Client, reg prometheus.Registerer, recorder record.EventRecorder,
	txOpts ...nbops.TransactorOption) (*controllers, error) {
	tx := nbops.NewTransactor(nb, reg, txOpts...)
	problems := metrics.NewProblems(recorder, reg)
	qm := queue.NewMetrics(reg)

	factory := informers.NewSharedInformerFactory(kc, 0)
	pods, nodes, nss := factory.Core().V1().Pods(), factory.Core().V1().Nodes(), factory.Core().V1().Namespaces()
	nodeCtl, err := node.New(cfg, kc, nodes.Lister(), nb, tx, problems, qm)
	if err != nil {
		return nil, err
	}
	podCtl := pod.New(cfg, kc, pod.Listers{Pods: pods.Lister(), Nodes: nodes.Lister(), Namespaces: nss.Lister()}, nb, tx, problems, qm)
	nsCtl := namespace.New(nss.Lister(), nb, tx, 2, qm)
	svcCtl, err := service.New(cfg, factory, nb, tx, problems, qm)
	if err != nil {
		return nil, err
	}
	var dynFactory dynamicinformer.DynamicSharedInformerFactory
	var epInformer informers.GenericInformer
	var epCtl *externalport.Controller
	if dc != nil {
		dynFactory = dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
		epInformer = dynFactory.ForResource(kube.ExternalPortResource())
		epCtl = externalport.New(cfg, dc, epInformer.Lister(), nb, tx, problems, qm, podCtl.Pool())
		if _, err := epInformer.Informer().AddEventHandler(epCtl.Queue.Handler()); err != nil {
			return nil, err
		}
	}
	policyCtl, err := policy.New(cfg, factory, epInformer, nb, tx, problems, qm)
	if err != nil {
		return nil, err
	}
	if reg != nil {
		if err := errors.Join(reg.Register(nodeCtl.SubnetMetrics()), reg.Register(podCtl.AddressMetrics())); err != nil {
			return nil, err
		}
	}
	if _, err := nodes.Informer().AddEventHandler(nodeCtl.Queue.Handler()); err != nil {
		return nil, err
	}
	// A node's subnet is what its pods wait for: give them a new chance
	// the moment it is recorded, instead of at their next backoff.
	if err := pods.Informer().AddIndexers(cache.Indexers{podsByNode: func(obj interface{}) ([]string, error) {
		return []string{obj.(*corev1.Pod).Spec.NodeName}, nil
	}}); err != nil {
		return nil, err
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj interface{}) {
			o, n := oldObj.(*corev1.Node), newObj.(*corev1.Node)
			if o.Annotations[kube.NodeSubnetsAnnotation] != n.Annotations[kube.NodeSubnetsAnnotation] {
				requeuePodsOf(n.Name, pods.Informer().GetIndexer(), podCtl.Queue)
			}
		},
	}); err != nil {
		return nil, err
	}
	if _, err := pods.Informer().AddEventHandler(podCtl.Handler()); err != nil {
		return nil, err
	}
	if _, err := nss.Informer().AddEventHandler(nsCtl.Queue.Handler()); err != nil {
		return nil, err
	}
	return &controllers{factory: factory, dynFactory: dynFactory, ep: epCtl, tx: tx, node: nodeCtl, ns: nsCtl, pod: podCtl, svc: svcCtl, policy: policyCtl}, nil
}

const podsByNode = "spec.nodeName"

// hasExternalPorts tells whether the API server serves ExternalPorts.
func hasExternalPorts(kc kubernetes.Interface) bool {
	gvr := kube.ExternalPortResource()
	list, err := kc.Discovery().ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

func requeuePodsOf(node string, pods cache.Indexer, q *queue.Controller) {
	objs, err := pods.ByIndex(podsByNode, node)
	if err != nil {
		return
	}
	for _, obj := range objs {
		p := obj.(*corev1.Pod)
		q.Enqueue(p.Namespace + "/" + p.Name)
	}
}
