using MoCo.Actors.Training;

namespace MoCo.Actors.Tests.Training;

/// <summary>The run's schedule between chunks (<see cref="RunSchedule"/>): what comes next, row by row.</summary>
public sealed class RunScheduleSpec
{
    // a run of 4 epochs, chunks of at most 50 steps
    private static NextAction Next(bool interrupt = false, long step = 100, long checkpointed = 96, int epoch = 2, bool canGrow = false, int every = 0) =>
        RunSchedule.Next(interrupt, step, checkpointed, epoch, epochs: 4, canGrow, chunkSteps: 50, every);

    [Fact]
    public void An_interrupt_writes_a_checkpoint_first_when_steps_were_done_since_the_last()
    {
        Assert.IsType<NextAction.CheckpointBeforeStop>(Next(interrupt: true, step: 100, checkpointed: 96));
        Assert.IsType<NextAction.CheckpointBeforeStop>(Next(interrupt: true, step: 100, checkpointed: -1));
    }

    [Fact]
    public void An_interrupt_stops_once_the_last_checkpoint_is_at_the_current_step()
    {
        Assert.IsType<NextAction.Stop>(Next(interrupt: true, step: 100, checkpointed: 100));
    }

    [Fact]
    public void An_interrupt_comes_before_completion_and_growth()
    {
        Assert.IsType<NextAction.Stop>(Next(interrupt: true, step: 100, checkpointed: 100, epoch: 4, canGrow: true));
    }

    [Fact]
    public void The_run_completes_after_its_last_epoch_and_does_not_grow_then()
    {
        Assert.IsType<NextAction.Complete>(Next(epoch: 4, canGrow: true));
    }

    [Fact]
    public void Offered_nodes_that_fit_grow_the_generation_before_the_next_chunk()
    {
        Assert.IsType<NextAction.Grow>(Next(canGrow: true));
    }

    [Theory]
    [InlineData(100, 0, 150)] // chunkSteps
    [InlineData(100, 32, 128)] // the next multiple of checkpoint-every-steps comes first
    [InlineData(96, 32, 128)] // from a multiple, the next one
    [InlineData(100, 1000, 150)] // a far checkpoint does not shorten the chunk
    [InlineData(0, 1, 1)] // a checkpoint after every step: chunks of one step
    public void A_chunk_ends_after_its_steps_or_where_a_checkpoint_is_due(long step, int every, long upTo)
    {
        var chunk = Assert.IsType<NextAction.RunChunk>(Next(step: step, every: every));
        Assert.Equal(upTo, chunk.UpTo);
    }

    [Theory]
    [InlineData(true, 64, 32, "EndEpoch")] // an epoch end takes its checkpoint with it
    [InlineData(false, 64, 32, "Checkpoint")]
    [InlineData(false, 65, 32, "NextChunk")]
    [InlineData(false, 64, 0, "NextChunk")]
    public void After_a_chunk_an_epoch_end_comes_first_then_a_due_checkpoint(bool epochEnded, long step, int every, string after)
    {
        Assert.Equal(Enum.Parse<AfterChunk>(after), RunSchedule.After(epochEnded, step, every));
    }
}
