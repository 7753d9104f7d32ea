import type { Balancer, Resolver } from '@trellis/core';
import { describe, expectTypeOf, it } from 'vitest';
import * as discovery from './index.js';

describe('@trellis/discovery public API', () => {
  it('balancers implement core Balancer, resolvers implement core Resolver', () => {
    expectTypeOf(discovery.roundRobin()).toExtend<Balancer>();
    expectTypeOf(discovery.random()).toExtend<Balancer>();
    expectTypeOf(discovery.leastRequest()).toExtend<Balancer>();
    expectTypeOf(discovery.peakEwma()).toExtend<Balancer>();
    expectTypeOf(discovery.consistentHash()).toExtend<Balancer>();
    expectTypeOf(discovery.staticDiscovery).returns.toExtend<Resolver>();
    expectTypeOf(discovery.dnsDiscovery).returns.toExtend<Resolver>();
    expectTypeOf(discovery.etcdDiscovery).returns.toExtend<Resolver>();
    expectTypeOf(discovery.consulDiscovery).returns.toExtend<Resolver>();
  });

  it('etcd and consul are registrars selfRegister accepts, with their own options', () => {
    expectTypeOf(discovery.etcdDiscovery).returns.toExtend<
      discovery.Registrar<discovery.EtcdRegisterOptions>
    >();
    expectTypeOf(discovery.consulDiscovery).returns.toExtend<
      discovery.Registrar<discovery.ConsulRegisterOptions>
    >();
    expectTypeOf<
      discovery.SelfRegisterOptions<discovery.EtcdRegisterOptions>['options']
    >().toEqualTypeOf<discovery.EtcdRegisterOptions>();
  });
});
