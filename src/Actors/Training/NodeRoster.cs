using Akka.Actor;
using MoCo.Actors.Collectives;

namespace MoCo.Actors.Training;

/// <summary>What the director knows of a remote node: its agent, its offer, whether it is in the run, its quarantine.</summary>
/// <param name="address">The node's address.</param>
/// <param name="agent">Its agent, the only sender the director accepts that node's messages from.</param>
internal sealed class RosterNode(string address, IActorRef agent)
{
    /// <summary>The node's address.</summary>
    public string Address { get; } = address;

    /// <summary>Its agent (the sender of its last proven offer).</summary>
    public IActorRef Agent { get; set; } = agent;

    /// <summary>The devices it offers (0 once it is lost, until it offers again).</summary>
    public int Devices { get; set; }

    /// <summary>The data plane its devices use.</summary>
    public DataPlaneKind DataPlane { get; set; }

    /// <summary>Workers of this run the node kept alive after the run's previous director was lost, for this one to take over.</summary>
    public int Held { get; set; }

    /// <summary>Its workers are part of the current or forming generation.</summary>
    public bool InRun { get; set; }

    /// <summary>Its failures in this run (each doubles its next quarantine).</summary>
    public int Failures { get; set; }

    /// <summary>Until when it gets no workers.</summary>
    public DateTime QuarantinedUntil { get; set; } = DateTime.MinValue;
}

/// <summary>
/// The remote nodes of a run, as offered and proven to the director: which may take ranks, how many, and for how long a
/// failed one is kept out. Bookkeeping and decisions only; the director does the messaging.
/// </summary>
internal sealed class NodeRoster
{
    /// <summary>The longest quarantine.</summary>
    public static readonly TimeSpan MaxQuarantine = TimeSpan.FromMinutes(5);

    private readonly Dictionary<string, RosterNode> _nodes = [];

    /// <summary>Every known node.</summary>
    public IEnumerable<RosterNode> Nodes => _nodes.Values;

    /// <summary>Records a proven offer of <paramref name="devices"/> devices from <paramref name="agent"/>.</summary>
    public RosterNode Offer(string address, IActorRef agent, int devices, DataPlaneKind dataPlane, int held = 0)
    {
        if (!_nodes.TryGetValue(address, out var node))
        {
            node = new RosterNode(address, agent);
            _nodes[address] = node;
        }

        node.Agent = agent;
        node.Devices = devices;
        node.DataPlane = dataPlane;
        node.Held = held;
        return node;
    }

    /// <summary>Whether <paramref name="sender"/> is the agent that made <paramref name="address"/>'s offer.</summary>
    public bool IsAgentOf(string? address, IActorRef sender) =>
        address is not null && _nodes.TryGetValue(address, out var known) && known.Agent.Equals(sender);

    /// <summary>Whether the node offers devices now (it answered, and was not lost since).</summary>
    public bool HasOffered(string address) => _nodes.TryGetValue(address, out var known) && known.Devices > 0;

    /// <summary>Until when <paramref name="address"/> is quarantined; null when it is not at <paramref name="now"/>.</summary>
    public DateTime? QuarantinedUntil(string address, DateTime now) =>
        _nodes.TryGetValue(address, out var known) && known.QuarantinedUntil > now ? known.QuarantinedUntil : null;

    /// <summary>The devices offered on <paramref name="dataPlane"/> by nodes not quarantined at <paramref name="now"/>.</summary>
    public int Offered(DataPlaneKind dataPlane, DateTime now) =>
        _nodes.Values.Where(n => n.DataPlane == dataPlane && n.QuarantinedUntil <= now).Sum(n => n.Devices);

    /// <summary>
    /// The nodes (offered, not quarantined, not in the run, on <paramref name="dataPlane"/>) that fit beside
    /// <paramref name="taken"/> ranks up to <paramref name="maxRanks"/>, in address order, with the ranks each takes.
    /// </summary>
    public List<(RosterNode Node, IReadOnlyList<int> Ranks)> Plan(int taken, int maxRanks, DataPlaneKind dataPlane, DateTime now)
    {
        var plan = new List<(RosterNode, IReadOnlyList<int>)>();
        int next = taken;
        foreach (var node in _nodes.Values.Where(n => !n.InRun && n.Devices > 0 && n.DataPlane == dataPlane && n.QuarantinedUntil <= now).OrderBy(n => n.Address, StringComparer.Ordinal))
        {
            int devices = Math.Min(node.Devices, maxRanks - next);
            if (devices <= 0)
            {
                break;
            }

            plan.Add((node, Enumerable.Range(next, devices).ToList()));
            next += devices;
        }

        return plan;
    }

    /// <summary>
    /// The nodes on <paramref name="dataPlane"/> that hold workers of the run (replicas that outlived its previous
    /// director), not in the run yet, in address order, as many as fit beside <paramref name="taken"/> ranks up to
    /// <paramref name="maxRanks"/>.
    /// </summary>
    public List<RosterNode> Holding(int taken, int maxRanks, DataPlaneKind dataPlane)
    {
        var holding = new List<RosterNode>();
        int next = taken;
        foreach (var node in _nodes.Values.Where(n => !n.InRun && n.Held > 0 && n.DataPlane == dataPlane).OrderBy(n => n.Address, StringComparer.Ordinal))
        {
            if (next + node.Held > maxRanks)
            {
                continue; // a node hands over all its workers or none
            }

            holding.Add(node);
            next += node.Held;
        }

        return holding;
    }

    /// <summary>The node is lost (unreachable, removed, disconnected, leaving): it offers nothing until it offers again.</summary>
    public void Lost(string address)
    {
        if (_nodes.TryGetValue(address, out var known))
        {
            known.Devices = 0;
            known.Held = 0;
        }
    }

    /// <summary>The node left on purpose: it is forgotten, without quarantine (it may offer again at once).</summary>
    public void Forget(string address) => _nodes.Remove(address);

    /// <summary>
    /// Keeps a failed node out of the run for <paramref name="backoffMin"/>, doubled with each of its failures, at most
    /// <see cref="MaxQuarantine"/>; the wait and the node's failures so far, or null for a node that never offered.
    /// </summary>
    public (TimeSpan Wait, int Failures)? Quarantine(string address, TimeSpan backoffMin, DateTime now)
    {
        if (!_nodes.TryGetValue(address, out var known))
        {
            return null;
        }

        known.InRun = false;
        known.Failures++;
        var wait = TimeSpan.FromSeconds(Math.Min(MaxQuarantine.TotalSeconds, backoffMin.TotalSeconds * Math.Pow(2, known.Failures - 1)));
        known.QuarantinedUntil = now + wait;
        return (wait, known.Failures);
    }
}
