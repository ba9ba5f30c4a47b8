-- Patches whose on-site verdict makes them a training label, from :since to :month (YYYY-MM).
--   change:     verified illegal or legal construction (a building appeared);
--   no_change:  verified false change, or dismissed in the office as cloud, shadow, vehicle or seasonal crop.
-- Pre-existing buildings, duplicates and "other" dismissals are left out: they say nothing clear about the pixels;
-- so are reported patches (巡查, 举报) their reporter did not see on the month's imagery (built after it, or hidden).
-- A reported patch seen on the imagery and confirmed is a building the model missed: a change label like any other.
-- Parameters:
--   :month   last month (YYYY-MM)
--   :since   first month (YYYY-MM)
select p.code, p.month, p.baseline_month, p.status, p.verification_result, p.dismiss_reason,
       case when p.verification_result in ('illegal', 'legal') then 'change' else 'no_change' end as label,
       p.area_m2, p.source
from patch p
where p.month between :since::text and :month::text
  and patch_is_live(p.status)
  and (p.source = 'imagery' or p.visible)
  and (p.verification_result in ('illegal', 'legal', 'false_change')
       or (p.status = 'dismissed' and p.dismiss_reason in ('cloud', 'shadow', 'vehicle', 'seasonal_crop')))
order by p.month, p.code;
