/// `GET /dashboard`: one self-contained page (no CDN, no external assets)
/// that polls `/metrics` and `/clusters` every second and shows request and
/// error rates, p50/p99 latency per route and cluster (from the histogram
/// deltas), endpoints, connections and loop lag. With `auth_reads` open it as
/// `/dashboard#token=<admin token>`: the token stays in the browser and is sent
/// as a bearer header.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Edge dashboard</title>
<style>
body{font:14px system-ui,sans-serif;margin:20px;background:#0f1419;color:#e6e6e6}
h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:18px 0 6px;color:#9ab}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#1b2430;padding:12px 16px;border-radius:8px;min-width:150px}
.card b{display:block;font-size:26px;color:#7fd1ff}.card span{color:#9ab}
table{border-collapse:collapse;width:100%;max-width:1100px}td,th{padding:4px 10px;text-align:right;border-bottom:1px solid #263241}
td:first-child,th:first-child{text-align:left}.err{color:#ff8080}.ok{color:#8fe388}#status{color:#9ab;margin-left:8px;font-size:12px}
</style></head><body>
<h1>Edge <span id="status">connecting…</span></h1>
<div class="cards">
<div class="card"><b id="rps">–</b><span>requests/s</span></div>
<div class="card"><b id="errs">–</b><span>5xx/s</span></div>
<div class="card"><b id="conns">–</b><span>open connections</span></div>
<div class="card"><b id="lag">–</b><span>max loop lag µs</span></div>
<div class="card"><b id="workers">–</b><span>workers</span></div>
</div>
<h2>Routes</h2><table id="routes"><thead><tr><th>listener / route</th><th>req/s</th><th>5xx/s</th><th>p50 ms</th><th>p99 ms</th><th>total</th></tr></thead><tbody></tbody></table>
<h2>Clusters</h2><table id="clusters"><thead><tr><th>cluster</th><th>req/s</th><th>5xx/s</th><th>p50 ms</th><th>p99 ms</th><th>in flight</th><th>endpoints</th></tr></thead><tbody></tbody></table>
<script>
const token=(location.hash.match(/token=([^&]+)/)||[])[1];
const opts=token?{headers:{Authorization:'Bearer '+decodeURIComponent(token)}}:{};
let prev=null,prevT=0;
function parse(text){const m=new Map();for(const line of text.split('\n')){if(!line||line[0]=='#')continue;
 const i=line.lastIndexOf(' ');const key=line.slice(0,i),v=parseFloat(line.slice(i+1));
 const b=key.indexOf('{');const name=b<0?key:key.slice(0,b);const labels={};
 if(b>=0)for(const p of key.slice(b+1,-1).match(/[a-z_]+="(?:[^"\\]|\\.)*"/g)||[]){const e=p.indexOf('=');labels[p.slice(0,e)]=p.slice(e+2,-1);}
 if(!m.has(name))m.set(name,[]);m.get(name).push({labels,v});}return m;}
function sum(m,name,f){return (m.get(name)||[]).filter(s=>!f||f(s.labels)).reduce((a,s)=>a+s.v,0);}
function group(m,name,key){const g=new Map();for(const s of m.get(name)||[]){const k=key(s.labels);if(!g.has(k))g.set(k,[]);g.get(k).push(s);}return g;}
function quantile(buckets,q){const tot=buckets.length?buckets[buckets.length-1].c:0;if(tot<=0)return null;
 let lo=0,prevC=0;for(const b of buckets){if(b.c>=q*tot){if(!isFinite(b.le))return lo*1000;const f=(q*tot-prevC)/Math.max(b.c-prevC,1e-9);return (lo+(b.le-lo)*f)*1000;}lo=b.le;prevC=b.c;}return lo*1000;}
function hist(cur,old,name,key){const out=new Map();const g=group(cur,name+'_bucket',key),o=old?group(old,name+'_bucket',key):new Map();
 for(const[k,ss]of g){const before=new Map((o.get(k)||[]).map(s=>[s.labels.le,s.v]));
  const b=ss.map(s=>({le:s.labels.le=='+Inf'?Infinity:parseFloat(s.labels.le),c:s.v-(before.get(s.labels.le)||0)})).sort((a,b)=>a.le-b.le);
  out.set(k,{p50:quantile(b,.5),p99:quantile(b,.99)});}return out;}
function fmt(x,d=1){return x==null?'–':x.toFixed(d);}
async function tick(){try{
 const [mt,cl]=await Promise.all([fetch('/metrics',opts).then(r=>{if(!r.ok)throw new Error('metrics '+r.status);return r.text();}),fetch('/clusters',opts).then(r=>r.ok?r.json():[])]);
 const cur=parse(mt),now=Date.now()/1000,dt=prev?now-prevT:0;
 const rate=(name,f)=>prev&&dt>0?Math.max(0,(sum(cur,name,f)-sum(prev,name,f))/dt):null;
 document.getElementById('rps').textContent=fmt(rate('edge_http_requests_total'),0);
 document.getElementById('errs').textContent=fmt(rate('edge_http_requests_total',l=>l.code_class=='5xx'),1);
 document.getElementById('conns').textContent=sum(cur,'edge_connections_active');
 document.getElementById('lag').textContent=Math.max(0,...(cur.get('edge_loop_lag_microseconds')||[]).map(s=>s.v));
 document.getElementById('workers').textContent=(cur.get('edge_connections_active')||[]).length;
 const rk=l=>l.listener+' / '+l.route,rh=hist(cur,prev,'edge_http_request_duration_seconds',rk);
 const routes=[...group(cur,'edge_http_requests_total',rk).keys()];
 document.querySelector('#routes tbody').innerHTML=routes.map(k=>{const f=l=>rk(l)==k,h=rh.get(k)||{};
  return `<tr><td>${k}</td><td>${fmt(rate('edge_http_requests_total',f),1)}</td><td class="err">${fmt(rate('edge_http_requests_total',l=>f(l)&&l.code_class=='5xx'),1)}</td><td>${fmt(h.p50,2)}</td><td>${fmt(h.p99,2)}</td><td>${sum(cur,'edge_http_requests_total',f)}</td></tr>`;}).join('');
 const ch=hist(cur,prev,'edge_cluster_request_duration_seconds',l=>l.cluster);
 document.querySelector('#clusters tbody').innerHTML=cl.map(c=>{const f=l=>l.cluster==c.name,h=ch.get(c.name)||{};
  const eps=(c.endpoints||[]).map(e=>`<span class="${e.state=='active'?'ok':'err'}">${e.address}</span>`).join(' ');
  return `<tr><td>${c.name}</td><td>${fmt(rate('edge_cluster_requests_total',f),1)}</td><td class="err">${fmt(rate('edge_cluster_requests_total',l=>f(l)&&l.code_class=='5xx'),1)}</td><td>${fmt(h.p50,2)}</td><td>${fmt(h.p99,2)}</td><td>${c.in_flight??'–'}</td><td>${eps}</td></tr>`;}).join('');
 prev=cur;prevT=now;document.getElementById('status').textContent='live · '+new Date().toLocaleTimeString();
}catch(e){document.getElementById('status').textContent='error: '+e.message;}}
tick();setInterval(tick,1000);
</script></body></html>
"""#
}
