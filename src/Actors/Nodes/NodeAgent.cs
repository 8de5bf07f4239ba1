namespace MoCo.Actors.Nodes;

/// <summary>
/// The protocol of <see cref="NodeAgentActor"/>: every process of a cluster runs one agent at <see cref="Path"/>; it offers
/// the node's devices to the run's director and creates the workers the director asks for, on this node.
/// </summary>
public static class NodeAgent
{
    /// <summary>The agent's actor name (top level: <c>/user/node-agent</c>).</summary>
    public const string Name = "node-agent";

    /// <summary>The agent's path on its node, for <c>ActorSelection</c> from another node.</summary>
    public const string Path = "/user/" + Name;

    /// <summary>A director asks the agent what it offers; answered by <see cref="Offer"/>.</summary>
    /// <param name="RunId">The run the director drives.</param>
    /// <param name="Nonce">Fresh random bytes the agent must sign with the cluster's secret.</param>
    public sealed record GetOffer(string RunId, byte[] Nonce) : IWireMessage;

    /// <summary>The node's devices, offered to the run, with proof that the node holds the cluster's secret.</summary>
    /// <param name="Node">The node's cluster address.</param>
    /// <param name="Devices">How many workers it can host.</param>
    /// <param name="Proof">HMAC-SHA256 under the cluster's secret of the run id, the node address and the nonce (<see cref="ClusterProof"/>).</param>
    /// <param name="DataPlane">The data plane the node's workers use; the director takes only nodes on its own.</param>
    /// <param name="Held">How many workers of the asking director's run the node holds, alive, since that run's previous
    /// director was lost (<see cref="AdoptWorkers"/> takes them over); 0 otherwise.</param>
    public sealed record Offer(string Node, int Devices, byte[] Proof, Collectives.DataPlaneKind DataPlane = Collectives.DataPlaneKind.Tcp, int Held = 0) : IWireMessage;

    /// <summary>
    /// Take over the workers this node holds for the run (its previous director was lost with its process): each is told
    /// its new director and rank (<see cref="Workers.Worker.Adopt"/>) and answers it with <see cref="Workers.Worker.Adopted"/>.
    /// </summary>
    /// <param name="RunId">The run.</param>
    /// <param name="Ranks">The ranks the held workers take, in the order the node created them; as many as it holds.</param>
    public sealed record AdoptWorkers(string RunId, IReadOnlyList<int> Ranks) : IWireMessage;

    /// <summary>
    /// Create workers for the run: one per entry of <paramref name="Ranks"/>, each starting empty (its state comes from a
    /// surviving rank by broadcast when the generation starts). The workers answer the sender (the director) directly.
    /// </summary>
    /// <param name="RunId">The run.</param>
    /// <param name="ConfigJson">The run's configuration (the node opens the data set it names).</param>
    /// <param name="Ranks">The ranks the new workers take in the coming generation.</param>
    /// <param name="WorldSize">The coming generation's size.</param>
    /// <param name="Incarnation">Distinguishes successive workers of this node (their actor names).</param>
    public sealed record StartWorkers(string RunId, string ConfigJson, IReadOnlyList<int> Ranks, int WorldSize, int Incarnation) : IWireMessage;

    /// <summary>The agent could not create the workers (the data set could not be opened, a bad configuration).</summary>
    /// <param name="Node">The node.</param>
    /// <param name="Error">What went wrong.</param>
    public sealed record StartFailed(string Node, string Error) : IWireMessage;

    /// <summary>Stop every worker of the run on this node (the node leaves the run; it may offer again later).</summary>
    /// <param name="RunId">The run.</param>
    public sealed record StopWorkers(string RunId) : IWireMessage;

    /// <summary>
    /// This node is about to leave (SIGTERM, Ctrl-C): tell the run's director, let the workers finish the chunk they
    /// were sent and stop; answered by <see cref="LeaveAck"/> once they have stopped.
    /// </summary>
    /// <param name="Reason">Why, for the run's history.</param>
    public sealed record Leave(string Reason) : IMocoMessage;

    /// <summary>The reply to <see cref="Leave"/>: the director was told (when there is one) and the workers have stopped.</summary>
    public sealed record LeaveAck : IMocoMessage
    {
        /// <summary>The instance.</summary>
        public static readonly LeaveAck Instance = new();
    }

    /// <summary>A node tells the run's director that it leaves on purpose: a new generation without it, no quarantine.</summary>
    /// <param name="Node">The node's cluster address.</param>
    /// <param name="Reason">Why.</param>
    public sealed record Leaving(string Node, string Reason) : IWireMessage;

    /// <summary>
    /// The run's director stops (an interrupt) while a standby trainer is Up: keep the workers, which hold the run's
    /// state at the step where it stopped, for the director that takes the run over (as when a director's process is
    /// lost), instead of ending the run.
    /// </summary>
    /// <param name="RunId">The run.</param>
    public sealed record HandOver(string RunId) : IWireMessage;

    /// <summary>The run is over: the node's process may end.</summary>
    /// <param name="RunId">The run.</param>
    /// <param name="Outcome">How it ended, for the log.</param>
    public sealed record RunEnded(string RunId, string Outcome) : IWireMessage;
}
