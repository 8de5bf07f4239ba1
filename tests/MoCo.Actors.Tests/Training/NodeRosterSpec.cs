using Akka.TestKit.Xunit2;
using MoCo.Actors.Collectives;
using MoCo.Actors.Training;

namespace MoCo.Actors.Tests.Training;

/// <summary>The director's roster of remote nodes (<see cref="NodeRoster"/>): who may take ranks, and quarantine.</summary>
public sealed class NodeRosterSpec : TestKit
{
    private static readonly DateTime T0 = new(2026, 12, 3, 12, 0, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void Offered_nodes_take_the_ranks_after_those_taken_in_address_order_up_to_the_limit()
    {
        var roster = new NodeRoster();
        roster.Offer("akka://b", CreateTestProbe().Ref, 2, DataPlaneKind.Tcp);
        roster.Offer("akka://a", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);
        roster.Offer("akka://c", CreateTestProbe().Ref, 4, DataPlaneKind.Tcp);

        var plan = roster.Plan(taken: 1, maxRanks: 5, DataPlaneKind.Tcp, T0);

        Assert.Equal(["akka://a", "akka://b", "akka://c"], plan.Select(p => p.Node.Address));
        Assert.Equal([[1], [2, 3], [4]], plan.Select(p => p.Ranks.ToArray()));
        Assert.Equal(7, roster.Offered(DataPlaneKind.Tcp, T0));
    }

    [Fact]
    public void Nodes_in_the_run_quarantined_lost_or_on_another_data_plane_take_no_ranks()
    {
        var roster = new NodeRoster();
        roster.Offer("akka://in-run", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp).InRun = true;
        roster.Offer("akka://nccl", CreateTestProbe().Ref, 1, DataPlaneKind.Nccl);
        roster.Offer("akka://lost", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);
        roster.Lost("akka://lost");
        roster.Offer("akka://failed", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);
        Assert.NotNull(roster.Quarantine("akka://failed", Second, T0));
        roster.Offer("akka://free", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);

        Assert.Equal(["akka://free"], roster.Plan(0, 8, DataPlaneKind.Tcp, T0).Select(p => p.Node.Address));
        Assert.False(roster.HasOffered("akka://lost"));
        Assert.True(roster.HasOffered("akka://free"));
        // the quarantine ends: the failed node takes ranks again
        Assert.Contains("akka://failed", roster.Plan(0, 8, DataPlaneKind.Tcp, T0 + Second).Select(p => p.Node.Address));
    }

    [Fact]
    public void Nodes_holding_workers_of_a_lost_director_hand_all_of_them_over_or_none_in_address_order()
    {
        var roster = new NodeRoster();
        roster.Offer("akka://c", CreateTestProbe().Ref, 2, DataPlaneKind.Tcp, held: 2);
        roster.Offer("akka://a", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp, held: 1);
        roster.Offer("akka://b", CreateTestProbe().Ref, 3, DataPlaneKind.Tcp, held: 3);
        roster.Offer("akka://fresh", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);
        roster.Offer("akka://nccl", CreateTestProbe().Ref, 1, DataPlaneKind.Nccl, held: 1);

        // beside 1 rank of the director's own, up to 5 ranks: a (1 held) fits, b (3) fits, c (2) would pass 5 and is left out
        Assert.Equal(["akka://a", "akka://b"], roster.Holding(taken: 1, maxRanks: 5, DataPlaneKind.Tcp).Select(n => n.Address));
        Assert.Equal(["akka://a", "akka://b", "akka://c"], roster.Holding(taken: 1, maxRanks: 8, DataPlaneKind.Tcp).Select(n => n.Address));
        Assert.Equal(["akka://nccl"], roster.Holding(taken: 0, maxRanks: 8, DataPlaneKind.Nccl).Select(n => n.Address));

        // a lost node holds nothing any more; a node already in the run is not taken over twice
        roster.Lost("akka://a");
        roster.Offer("akka://b", CreateTestProbe().Ref, 3, DataPlaneKind.Tcp, held: 3).InRun = true;
        Assert.Equal(["akka://c"], roster.Holding(taken: 1, maxRanks: 8, DataPlaneKind.Tcp).Select(n => n.Address));
    }

    [Fact]
    public void A_quarantine_doubles_with_each_failure_of_the_node_up_to_five_minutes()
    {
        var roster = new NodeRoster();
        roster.Offer("akka://n", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp);

        var waits = Enumerable.Range(0, 11).Select(_ => roster.Quarantine("akka://n", Second, T0)!.Value).ToList();

        Assert.Equal([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300], waits.Select(w => w.Wait.TotalSeconds));
        Assert.Equal(Enumerable.Range(1, 11), waits.Select(w => w.Failures));
        Assert.Equal(T0 + TimeSpan.FromMinutes(5), roster.QuarantinedUntil("akka://n", T0));
        Assert.Null(roster.QuarantinedUntil("akka://n", T0 + TimeSpan.FromMinutes(5)));
        Assert.Null(roster.Quarantine("akka://never-offered", Second, T0));
    }

    [Fact]
    public void Only_the_agent_of_the_latest_proven_offer_speaks_for_its_node()
    {
        var roster = new NodeRoster();
        var first = CreateTestProbe().Ref;
        var second = CreateTestProbe().Ref;
        roster.Offer("akka://n", first, 1, DataPlaneKind.Tcp);
        Assert.True(roster.IsAgentOf("akka://n", first));

        roster.Offer("akka://n", second, 1, DataPlaneKind.Tcp); // the node restarted its agent
        Assert.False(roster.IsAgentOf("akka://n", first));
        Assert.True(roster.IsAgentOf("akka://n", second));
        Assert.False(roster.IsAgentOf("akka://other", second));
        Assert.False(roster.IsAgentOf(null, second));
    }

    [Fact]
    public void A_node_that_left_on_purpose_is_forgotten_without_quarantine()
    {
        var roster = new NodeRoster();
        roster.Offer("akka://n", CreateTestProbe().Ref, 1, DataPlaneKind.Tcp).InRun = true;

        roster.Forget("akka://n");

        Assert.Empty(roster.Nodes);
        Assert.Null(roster.QuarantinedUntil("akka://n", T0));
        Assert.Equal(0, roster.Offered(DataPlaneKind.Tcp, T0));
    }
}
