namespace MoCo.Bench;

/// <summary>One configuration of <c>moco-bench step</c>, set up before timing and stepped by <see cref="StepClock"/>.</summary>
internal interface IStepBench : IDisposable
{
    /// <summary>Runs step <paramref name="index"/> (warm-up steps included) to completion.</summary>
    void Step(int index);

    /// <summary>A line for the report: what was set up, and the last loss where there is one.</summary>
    string Note { get; }
}
