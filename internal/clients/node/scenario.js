// The client scenario of cmd/pgcdc/clients_common_test.go, run with
// node-postgres (pg). Besides the common steps it uses pg's own protocol
// variants: unnamed and named prepared statements, binary results
// (binary: true), and pipeline mode (several Parse/Bind/Execute/Sync
// groups on the wire before the first answer).
//
// Connection details come from the environment (PGCDC_*, SOURCE_*). It
// prints "ok <step>" for every step passed and exits non-zero on the first
// failure. Run with: node scenario.js (after npm ci in this directory).
'use strict'

const pg = require('pg')

const E = process.env
const SLOT = E.PGCDC_SLOT
const PUB = E.PGCDC_PUB
const BIG_ROWS = Number(E.BIG_ROWS)
const CANCEL_AFTER_MS = Number(E.CANCEL_AFTER_MS)

function ok(step, detail = '') {
  console.log(`ok ${step} ${detail}`)
}

function check(cond, msg) {
  if (!cond) {
    console.log(`FAIL ${msg}`)
    process.exit(1)
  }
}

function pgcdcConfig(extra = {}) {
  return {
    host: E.PGCDC_HOST,
    port: Number(E.PGCDC_PORT),
    user: E.PGCDC_USER,
    password: E.PGCDC_PASSWORD,
    database: E.PGCDC_DBNAME,
    application_name: 'node-scenario',
    connectionTimeoutMillis: 10000,
    ...extra,
  }
}

async function connect(config) {
  const c = new pg.Client(config)
  await c.connect()
  return c
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const json = (v) => JSON.stringify(v)

async function expectError(promise, code, what) {
  try {
    await promise
  } catch (e) {
    check(e.code === code, `${what}: got ${e.code} ${e.message}, want ${code}`)
    return e
  }
  check(false, `${what}: no error, want ${code}`)
}


async function main() {
  console.log(`node-postgres ${require('pg/package.json').version}, node ${process.version}`)
  const src = await connect({
    host: E.SOURCE_HOST,
    port: Number(E.SOURCE_PORT),
    user: E.SOURCE_USER,
    password: E.SOURCE_PASSWORD,
    database: E.SOURCE_DBNAME,
  })

  // tls: SCRAM over TLS.
  {
    const c = await connect(pgcdcConfig({ ssl: { rejectUnauthorized: false } }))
    check(c.connection.stream.encrypted === true, 'connection is not TLS')
    const r = await c.query('SELECT 1 AS one')
    check(json(r.rows) === json([{ one: 1 }]), `SELECT 1 over TLS: ${json(r.rows)}`)
    await c.end()
    ok('tls')
  }

  // bad_password
  {
    const c = new pg.Client(pgcdcConfig({ password: 'wrong' }))
    await expectError(c.connect(), '28P01', 'wrong password')
    ok('bad_password', '28P01')
  }

  const conn = await connect(pgcdcConfig())
  const notices = []
  conn.on('notice', (n) => notices.push(n.message))

  // init: literals; progress NOTICEs.
  {
    const r = await conn.query(
      `SELECT table_name, snapshot_rows FROM init_replication('${SLOT}', '${PUB}', schema_name => 'shop', ` +
        `table_names => ARRAY['orders', 'customers', 'big'], persist_snapshots => true)`
    )
    const want = [
      { table_name: 'shop.orders', snapshot_rows: '3' },
      { table_name: 'shop.customers', snapshot_rows: '3' },
      { table_name: 'shop.big', snapshot_rows: '0' },
    ]
    check(json(r.rows) === json(want), `init_replication = ${json(r.rows)}`)
    check(
      notices.some((n) => n.startsWith('snapshot shop.orders: 3 rows copied')),
      `no snapshot progress NOTICE: ${json(notices)}`
    )
    ok('init', json(r.rows))
  }

  // replicate: bound parameters in an unnamed statement, a named one run
  // twice, and binary results.
  {
    const text = 'SELECT table_name, inserts, updates, deletes FROM replicate($1, $2, target_batch_size => $3)'
    const variants = [
      { text, values: [SLOT, PUB, 7] },
      { name: 'replicate', text, values: [SLOT, PUB, 8] },
      { name: 'replicate', text, values: [SLOT, PUB, 9] },
      { text: 'SELECT * FROM replicate($1, $2)', values: [SLOT, PUB], binary: true },
    ]
    for (const [i, q] of variants.entries()) {
      await src.query('INSERT INTO shop.orders (customer_id, amount, note) VALUES ($1, $2, $3)', [i, `${i}.75`, `node ${i}`])
      await src.query('UPDATE shop.customers SET email = $1 WHERE id = 1', [`node${i}@example.com`])
      const r = await conn.query(q)
      const byTable = Object.fromEntries(
        r.rows.map((row) => [row.table_name, [row.inserts, row.updates, row.deletes].map(String)]).sort()
      )
      const want = { 'shop.customers': ['0', '1', '0'], 'shop.orders': ['1', '0', '0'] }
      check(json(byTable) === json(want), `replicate ${json(q)} = ${json(r.rows)}`)
    }
    ok('replicate', `${variants.length} calls`)
  }

  // passthrough: text and binary results equal the source's.
  {
    const q = 'SELECT id, customer_id, amount, note, placed_at FROM shop.orders WHERE customer_id >= $1 ORDER BY id'
    for (const binary of [false, true]) {
      const want = await src.query({ text: q, values: [0], binary })
      const got = await conn.query({ text: q, values: [0], binary })
      check(json(got.rows) === json(want.rows), `orders differ (binary ${binary}):\nsource  ${json(want.rows)}\nreplica ${json(got.rows)}`)
      check(
        json(got.fields.map((f) => f.dataTypeID)) === json(want.fields.map((f) => f.dataTypeID)),
        `column types differ: ${json(got.fields)} vs ${json(want.fields)}`
      )
    }
    const got = await conn.query({ name: 'customers', text: 'SELECT id, name, email FROM shop.customers ORDER BY id' })
    const want = await src.query('SELECT id, name, email FROM shop.customers ORDER BY id')
    check(json(got.rows) === json(want.rows), `customers differ: ${json(got.rows)} vs ${json(want.rows)}`)
    ok('passthrough', `${want.rows.length} customers`)
  }

  // Pipeline mode: several queries on the wire at once, each with its own
  // Sync; an error in one does not disturb the others.
  {
    const piped = await connect(pgcdcConfig({ pipeline: true }))
    await src.query("UPDATE shop.orders SET note = 'piped' WHERE id = 1")
    const results = await Promise.allSettled([
      piped.query('SELECT table_name, updates FROM replicate($1, $2)', [SLOT, PUB]),
      piped.query('SELECT note FROM shop.orders WHERE id = $1', [1]),
      piped.query('SELECT * FROM replicate($1, $2, nope => 1)', [SLOT, PUB]),
      piped.query('SELECT $1::int + 1 AS two', [1]),
    ])
    check(results[0].status === 'fulfilled' && json(results[0].value.rows) === json([{ table_name: 'shop.orders', updates: '1' }]),
      `pipelined replicate: ${json(results[0])}`)
    check(results[1].status === 'fulfilled' && results[1].value.rows[0].note === 'piped', `pipelined read: ${json(results[1])}`)
    check(results[2].status === 'rejected' && results[2].reason.code === '42883', `pipelined error: ${json(results[2])}`)
    check(results[3].status === 'fulfilled' && results[3].value.rows[0].two === 2, `pipelined query after the error: ${json(results[3])}`)
    await piped.end()
  }

  // error: an unknown argument fails with 42883; the connection recovers.
  await expectError(conn.query(`SELECT * FROM replicate('${SLOT}', '${PUB}', bogus => 1)`), '42883', 'unknown argument')
  check((await conn.query('SELECT 1 AS one')).rows[0].one === 1, 'SELECT 1 after an error')
  ok('error', '42883')

  // transaction: a call inside a block works; a failure aborts the block
  // until ROLLBACK.
  {
    await src.query("INSERT INTO shop.customers VALUES (30, 'node tx', NULL)")
    await conn.query('BEGIN')
    const r = await conn.query('SELECT table_name, inserts FROM replicate($1, $2)', [SLOT, PUB])
    check(json(r.rows) === json([{ table_name: 'shop.customers', inserts: '1' }]), `replicate in a block: ${json(r.rows)}`)
    const seen = await conn.query('SELECT name FROM shop.customers WHERE id = 30')
    check(json(seen.rows) === json([{ name: 'node tx' }]), `replica inside the block: ${json(seen.rows)}`)
    await expectError(conn.query('SELECT * FROM replicate($1, $2, nope => true)', [SLOT, PUB]), '42883', 'failing call in a block')
    await expectError(conn.query('SELECT 1'), '25P02', 'statement in an aborted block')
    await conn.query('ROLLBACK')
    check((await conn.query('SELECT 1 AS one')).rows[0].one === 1, 'SELECT 1 after ROLLBACK')
    ok('transaction', '25P02 until ROLLBACK')
  }

  // cancel: a long replicate(), cancelled through pg's CancelRequest
  // (Client#cancel opens its own connection, as libpq's PQcancel does).
  {
    await src.query(`INSERT INTO shop.big SELECT g, g FROM generate_series(1, ${BIG_ROWS}) g`)
    const q = new pg.Query('SELECT * FROM replicate($1, $2, target_batch_size => $3)', [SLOT, PUB, 10])
    const done = new Promise((resolve) => {
      q.on('error', resolve)
      q.on('end', () => resolve(null))
    })
    const start = Date.now()
    conn.query(q)
    await sleep(CANCEL_AFTER_MS)
    new pg.Client(pgcdcConfig()).cancel(conn, q)
    const err = await done
    check(err !== null, 'replicate() finished before the cancel')
    check(err.code === '57014', `cancelled replicate: ${err.code} ${err.message}`)
    ok('cancel', `57014 after ${((Date.now() - start) / 1000).toFixed(1)}s`)
  }

  // after_cancel: at once, the slot must already be free
  {
    const r = await conn.query('SELECT table_name, inserts FROM replicate($1, $2)', [SLOT, PUB])
    check(json(r.rows) === json([{ table_name: 'shop.big', inserts: String(BIG_ROWS) }]), `replicate after cancel: ${json(r.rows)}`)
    const q = 'SELECT count(*) AS n, sum(v)::bigint AS total FROM shop.big'
    const want = (await src.query(q)).rows
    const got = (await conn.query(q)).rows
    check(json(got) === json(want), `big differs: source ${json(want)}, replica ${json(got)}`)
    ok('after_cancel', json(got))
  }

  await conn.end()
  await src.end()
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`)
  process.exit(1)
})
