/**
 * The B+ tree of `sorted-btree` (copy-on-write `clone()` in O(1)), whatever way the CommonJS
 * module is presented to this ES module.
 *
 * @internal
 */
import SortedBTree from "sorted-btree"

type BTreeClass = typeof SortedBTree.default

/** @internal */
export type BTree<K, V> = SortedBTree.default<K, V>

const loaded = SortedBTree as unknown as BTreeClass | { readonly default: BTreeClass }

/** @internal */
export const BTree: BTreeClass = typeof loaded === "function" ? loaded : loaded.default
