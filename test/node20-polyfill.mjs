// Node 20 lacks a few ES2024 built-ins that vitest 5's reporter uses (Map.groupBy on any failing
// test). Loaded with `node --import` before vitest starts.
const groupBy = (items, key) => {
  const m = new Map()
  let i = 0
  for (const x of items) {
    const k = key(x, i++)
    const l = m.get(k)
    if (l) l.push(x)
    else m.set(k, [x])
  }
  return m
}
Map.groupBy ??= groupBy
Object.groupBy ??= (items, key) => Object.assign(Object.create(null), Object.fromEntries(groupBy(items, key)))
Promise.withResolvers ??= function() {
  let resolve, reject
  const promise = new this((a, b) => {
    resolve = a
    reject = b
  })
  return { promise, resolve, reject }
}
