using System.Globalization;

namespace MoCo.Model.Training;

/// <summary>
/// A step's loss (summed over the world) was NaN or infinite. Thrown before the step commits, so the state is
/// that of the previous step. Redoing the step from the same state gives the same loss: a person must act
/// (lower the learning rate, check the data), which the message says.
/// </summary>
public sealed class NonFiniteLossException : Exception
{
    /// <summary>Creates the exception for the step at <paramref name="globalStep"/>.</summary>
    public NonFiniteLossException(long globalStep, int epoch, int stepInEpoch, double loss, double lr)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"the loss of global step {globalStep} (epoch {epoch}, step {stepInEpoch}) is {loss} at learning rate {lr:G4}: training diverged; lower --lr (or add warm-up), check the data, or resume from an earlier checkpoint"))
    {
        GlobalStep = globalStep;
        Loss = loss;
    }

    /// <summary>The step whose loss was not finite.</summary>
    public long GlobalStep { get; }

    /// <summary>The loss.</summary>
    public double Loss { get; }
}
