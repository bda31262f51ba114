// The search tree as the panel knows it, built by applying the engine's SearchEvents in order. DOM-free, so the unit
// tests (Node) drive it exactly as the page does.
//
// Time: the search moves depth by depth. Every event is stamped with the "slot" it happened in: slot d+1 holds what
// happened while depth d+1 was being built (the decisions on the depth-d frontier, then the new depth-(d+1) nodes),
// and closes with `depthDone`. The root exists at time 0. Replaying to time t shows every node added at or before t in
// the state it had when slot t closed; `kept` replaces `expanding` when the slot closes (expanding is only ever seen
// live, while the children are being generated).
import type {SearchEvent, SearchMethod} from "../../src/engine/protocol";

export type NodeState = "expanding" | "active" | "kept" | "pruned" | "finished";

export interface TreeNodeData {
    id: number;
    parentId: number;
    depth: number;
    /** The step's text (the root: the question). */
    text: string;
    tokens: number;
    score?: number;
    cluster?: number;
    state: NodeState;
    answer?: string;
    finishReason?: string;
    /** Children the policy gave this node (nodeKept). */
    childrenAllotted?: number;
    children: TreeNodeData[];
    parent?: TreeNodeData;
    /** Slot the node was added in. */
    addedAt: number;
    /** Every state it had, with the slot it took effect: the first entry is "active" at addedAt. */
    history: Array<{t: number, state: NodeState}>;
    /** Layout: x along the depth axis, y across (tree units); set by layoutTree. */
    x: number;
    y: number;
}

export interface KvSample {
    t: number;
    used: number;
    searchCells: number;
    unsharedCells: number;
}

export interface SearchStats {
    method?: SearchMethod;
    width?: number;
    depth: number;
    nodes: number;
    kvNow?: number;
    kvPeak?: number;
    unsharedNow?: number;
    unsharedPeak?: number;
    remainingWidth?: number;
}

export class SearchTreeModel {
    public readonly nodes = new Map<number, TreeNodeData>();
    public root?: TreeNodeData;
    public method?: SearchMethod;
    public width?: number;
    public question = "";
    public prm = "";
    public embedding = "";
    /** depthDone events so far. */
    public doneDepths = 0;
    /** The latest slot any event was stamped with: the timeline's end. */
    public maxTime = 0;
    public readonly kv: KvSample[] = [];
    public remainingWidth?: number;
    public finished?: {answer: string, answerNodeId: number | undefined, nodes: number};
    /** Every event applied, in order (exports replay them). */
    public readonly events: SearchEvent[] = [];

    /** Nodes whose look changed since the renderer last took them. */
    public readonly dirty = new Set<number>();
    /** Bumped when nodes are added: the layout must run again. */
    public structureVersion = 0;
    /** Events that named a node the model does not know (should stay 0: the engine adds parents first). */
    public orphanEvents = 0;

    private get slot(): number {
        return this.doneDepths + 1;
    }

    public applyAll(events: readonly SearchEvent[]): void {
        for (const event of events)
            this.apply(event);
    }

    public apply(event: SearchEvent): void {
        if (event.type === "started") {
            this.reset();
            this.events.push(event);
            this.method = event.method;
            this.width = event.width;
            this.question = event.question;
            this.prm = event.prm;
            this.embedding = event.embedding;
            const root = this.makeNode(event.rootId, -1, 0, event.question, 0, 0);
            this.root = root;
            return;
        }
        this.events.push(event);

        switch (event.type) {
            case "nodeAdded": {
                const parent = this.nodes.get(event.parentId);
                if (parent == null || this.nodes.has(event.id)) {
                    this.orphanEvents++;
                    return;
                }
                const node = this.makeNode(event.id, event.parentId, event.depth, event.text, event.tokens, this.slot);
                node.parent = parent;
                parent.children.push(node);
                this.stamp();
                break;
            }
            case "nodeScored": {
                const node = this.nodes.get(event.id);
                if (node == null) {
                    this.orphanEvents++;
                    return;
                }
                node.score = event.score;
                if (event.cluster != null)
                    node.cluster = event.cluster;
                this.dirty.add(node.id);
                break;
            }
            case "nodeKept": {
                const node = this.setState(event.id, "expanding");
                if (node != null)
                    node.childrenAllotted = event.children;
                break;
            }
            case "nodePruned":
                this.setState(event.id, "pruned");
                break;
            case "nodeFinished": {
                const node = this.setState(event.id, "finished");
                if (node != null) {
                    node.answer = event.answer;
                    node.finishReason = event.reason;
                }
                break;
            }
            case "kvCells":
                this.kv.push({t: this.slot, used: event.used, searchCells: event.searchCells, unsharedCells: event.unsharedCells});
                this.stamp();
                break;
            case "depthDone": {
                // The slot closes: nodes that were expanding have their children now.
                for (const node of this.nodes.values())
                    if (node.state === "expanding")
                        this.pushState(node, "kept", this.slot);
                this.remainingWidth = event.remainingWidth;
                this.stamp();
                this.doneDepths++;
                break;
            }
            case "finished":
                this.finished = {answer: event.answer, answerNodeId: event.answerNodeId, nodes: event.nodes};
                if (event.answerNodeId != null)
                    this.dirty.add(event.answerNodeId);
                // Anything still expanding when the search stopped never got its children.
                for (const node of this.nodes.values())
                    if (node.state === "expanding")
                        this.pushState(node, "kept", this.slot);
                break;
        }
    }

    /** The state a node had when slot `time` closed (undefined time: now). */
    public stateAt(node: TreeNodeData, time?: number): NodeState {
        if (time == null || time >= this.maxTime)
            return node.state;
        let state: NodeState = "active";
        for (const entry of node.history) {
            if (entry.t > time)
                break;
            state = entry.state;
        }
        // A node whose children are generated in a later slot was still open at `time`.
        return state === "expanding" ? "kept" : state;
    }

    public isVisible(node: TreeNodeData, time?: number): boolean {
        return time == null || node.addedAt <= time;
    }

    /** The header's numbers, now or as of a time. */
    public stats(time?: number): SearchStats {
        let nodes = 0;
        let depth = 0;
        for (const node of this.nodes.values())
            if (this.isVisible(node, time)) {
                nodes++;
                depth = Math.max(depth, node.depth);
            }
        let kvNow: KvSample | undefined;
        let kvPeak = 0;
        let unsharedPeak = 0;
        for (const sample of this.kv) {
            if (time != null && sample.t > time)
                break;
            kvNow = sample;
            kvPeak = Math.max(kvPeak, sample.searchCells);
            unsharedPeak = Math.max(unsharedPeak, sample.unsharedCells);
        }
        return {
            method: this.method, width: this.width, depth, nodes,
            kvNow: kvNow?.searchCells, unsharedNow: kvNow?.unsharedCells,
            kvPeak: kvNow != null ? kvPeak : undefined, unsharedPeak: kvNow != null ? unsharedPeak : undefined,
            remainingWidth: this.remainingWidth
        };
    }

    /** Root first. */
    public pathTo(node: TreeNodeData): TreeNodeData[] {
        const path: TreeNodeData[] = [];
        for (let at: TreeNodeData | undefined = node; at != null; at = at.parent)
            path.push(at);
        return path.reverse();
    }

    /** The chosen answer's node and its ancestors, once the search finished. */
    public answerPath(): Set<number> {
        const id = this.finished?.answerNodeId;
        const node = id != null ? this.nodes.get(id) : undefined;
        return new Set(node != null ? this.pathTo(node).map((n) => n.id) : []);
    }

    private makeNode(id: number, parentId: number, depth: number, text: string, tokens: number, t: number): TreeNodeData {
        const node: TreeNodeData = {
            id, parentId, depth, text, tokens, state: "active", children: [], addedAt: t,
            history: [{t, state: "active"}], x: 0, y: 0
        };
        this.nodes.set(id, node);
        this.dirty.add(id);
        this.structureVersion++;
        return node;
    }

    private setState(id: number, state: NodeState): TreeNodeData | undefined {
        const node = this.nodes.get(id);
        if (node == null) {
            this.orphanEvents++;
            return undefined;
        }
        this.pushState(node, state, this.slot);
        this.stamp();
        return node;
    }

    private pushState(node: TreeNodeData, state: NodeState, t: number): void {
        node.state = state;
        node.history.push({t, state});
        this.dirty.add(node.id);
    }

    private stamp(): void {
        this.maxTime = Math.max(this.maxTime, this.slot);
    }

    /** Forgets everything (another search is loaded). */
    public reset(): void {
        this.nodes.clear();
        this.root = undefined;
        this.doneDepths = 0;
        this.maxTime = 0;
        this.kv.length = 0;
        this.events.length = 0;
        this.remainingWidth = undefined;
        this.finished = undefined;
        this.dirty.clear();
        this.structureVersion++;
        this.orphanEvents = 0;
    }
}

/** The colour bin (0–9) of a PRM score, clamped to [0, 1]. */
export function scoreBin(score: number | undefined): number | undefined {
    if (score == null || !Number.isFinite(score))
        return undefined;
    return Math.max(0, Math.min(9, Math.floor(Math.max(0, Math.min(1, score)) * 10)));
}
