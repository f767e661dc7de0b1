// Preload (node --require) for the TLS fixtures: resolve the names listed in
// PIN_HOSTS="name=ip,..." to loopback without DNS or /etc/hosts, like curl
// --resolve. net/tls connect through dns.lookup, so the URL, Host header and
// SNI keep the made-up name.
'use strict';
const dns = require('node:dns');
const pins = new Map((process.env.PIN_HOSTS || '').split(',').filter(Boolean).map((p) => p.split('=')));
const lookup = dns.lookup;
dns.lookup = function pinnedLookup(host, options, callback) {
  if (typeof options === 'function') { callback = options; options = {}; }
  if (typeof options === 'number') options = { family: options };
  const ip = pins.get(host);
  if (ip === undefined) return lookup.call(this, host, options, callback);
  const family = ip.includes(':') ? 6 : 4;
  process.nextTick(() => (options && options.all ? callback(null, [{ address: ip, family }]) : callback(null, ip, family)));
  return {};
};
