using MoCo.Model.Training;

namespace MoCo.Model.Tests;

public class ScheduleAndLayoutTests
{
    [Fact]
    public void Cosine_schedule_matches_official_formula()
    {
        var s = new LrSchedule(0.06, 200, true, []);
        Assert.Equal(0.06, s.At(0, 0, 100), 12);
        Assert.Equal(0.03, s.At(100, 5, 100), 12);
        Assert.Equal(0.06 * 0.5 * (1 + Math.Cos(Math.PI * 150 / 200)), s.At(150, 0, 100), 12);
    }

    [Fact]
    public void Step_schedule_decays_at_milestones()
    {
        var s = new LrSchedule(30, 100, false, [60, 80]);
        Assert.Equal(30, s.At(59, 0, 10), 12);
        Assert.Equal(3, s.At(60, 0, 10), 12);
        Assert.Equal(0.3, s.At(80, 0, 10), 12);
    }

    [Fact]
    public void Warmup_ramps_linearly_per_step()
    {
        var s = new LrSchedule(1.0, 10, false, [], WarmupEpochs: 2);
        Assert.Equal(1.0 / 20, s.At(0, 0, 10), 12);
        Assert.Equal(11.0 / 20, s.At(1, 0, 10), 12);
        Assert.Equal(1.0, s.At(2, 0, 10), 12);
    }

    [Fact]
    public void Layout_shares_whole_groups_and_covers_the_batch_once()
    {
        var layout = new BatchLayout(24, 8, 3); // 8 groups over 3 workers: 2, 3, 3 groups
        Assert.Equal([2, 3, 3], Enumerable.Range(0, 3).Select(layout.LocalGroups).ToArray());
        var all = Enumerable.Range(0, 3).SelectMany(r => layout.Positions(r)).OrderBy(p => p).ToArray();
        Assert.Equal(Enumerable.Range(0, 24).ToArray(), all);
        for (int r = 0; r < 3; r++)
        {
            var pos = layout.Positions(r);
            int gr = layout.LocalGroups(r);
            for (int p = 0; p < pos.Count; p++)
            {
                // local group p mod g_r is global group GroupStart + p mod g_r
                Assert.Equal(layout.GroupStart(r) + p % gr, pos[p] % 8);
            }
        }
        Assert.Throws<ArgumentException>(() => new BatchLayout(24, 8, 9));
        Assert.Throws<ArgumentException>(() => new BatchLayout(25, 8, 1));
    }
}
