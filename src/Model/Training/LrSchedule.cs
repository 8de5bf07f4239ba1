namespace MoCo.Model.Training;

/// <summary>
/// The learning rate of the official main_moco.py, set per epoch: cosine, lr·½(1+cos(π·epoch/epochs)), or
/// step, lr·0.1^(number of milestones ≤ epoch). An optional linear warm-up (not in the official code) ramps
/// per step from 0 to the scheduled value over the first <see cref="WarmupEpochs"/> epochs.
/// </summary>
public sealed record LrSchedule(double BaseLr, int Epochs, bool Cosine, IReadOnlyList<int> Milestones, double WarmupEpochs = 0)
{
    public double At(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        double lr = BaseLr;
        if (Cosine)
        {
            lr *= 0.5 * (1.0 + Math.Cos(Math.PI * epoch / Epochs));
        }
        else
        {
            foreach (int milestone in Milestones)
            {
                lr *= epoch >= milestone ? 0.1 : 1.0;
            }
        }
        if (WarmupEpochs > 0)
        {
            double progress = epoch + (double)stepInEpoch / Math.Max(1, stepsPerEpoch);
            if (progress < WarmupEpochs)
            {
                lr *= (progress + 1.0 / Math.Max(1, stepsPerEpoch)) / WarmupEpochs;
            }
        }
        return lr;
    }
}
